"""The table of contents of the project: every paper, in history order.

Each :class:`Paper` records where a milestone appeared, which package of ``milestones`` holds its
code (its *era*), which limit on what networks could learn it lifted (its *constraint*), and which
earlier papers it builds on.  ``builds_on`` is the lineage the code follows: a paper's module may
import only from the modules of the papers it names, and a PyTorch built-in that an earlier paper
proved equal to its own code (``nn.LSTM``, ``torch.optim.Adam``) counts as that paper; both are
checked by tests/test_lineage.py.  Some edges are history the code does not show (bert builds on
transformer before either is implemented); they stay.

Conventions
-----------
* ``date`` ("YYYY-MM") is the first public appearance: arXiv v1 where there is one, otherwise the
  journal issue or the conference.  ``PAPERS`` is sorted by it; papers from the same month keep the
  order in which they appeared within that month.
* ``year`` is the year of ``date``.  ``pub_year`` (when non-zero) is the year of the venue that the
  BibTeX entry cites, e.g. Adam appeared on arXiv in 2014 and at ICLR in 2015.
* ``era`` is the package a paper lives in; it groups papers by theme, so the history order
  interleaves the eras (the 1989 RNN paper lives in ``sequences``, PPO in ``transformers``).
* ``authors`` are full names in the order printed; ``short_authors`` gives the usual citation form.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ERAS",
    "CONSTRAINTS",
    "Paper",
    "PAPERS",
    "get",
    "ids",
    "in_era",
    "bibtex",
    "surname",
    "validate",
]

ERAS: dict[str, str] = {  # package name -> human title, in order
    "foundations": "Foundations",
    "optimization": "Optimization & regularization",
    "sequences": "Sequence modeling",
    "transformers": "Transformers",
    "generative": "Generative models",
    "frontier": "The frontier",
}

CONSTRAINTS: tuple[str, ...] = (
    "data",
    "parameters",
    "optimization & regularization",
    "architecture",
    "compute",
    "compute efficiency",
    "alignment",
)

ARXIV_ABS = "https://arxiv.org/abs/"
_ARXIV_RE = re.compile(r"^https://arxiv\.org/abs/(\d{4}\.\d{4,5})$")

# Lower-cased words that belong to a surname when they precede the last word of a name
# ("Aaron van den Oord", "Diego de Las Casas", "Teven Le Scao", "William El Sayed").
_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "di", "da", "du",
                        "la", "le", "las", "los", "el", "bou", "dos", "ter", "ten"})
# Compound surnames the particle rule cannot see.
_SURNAME_OVERRIDES = {"Lélio Renard Lavaud": "Renard Lavaud"}


def surname(name: str) -> str:
    """The family name in a full name: ``"David E. Rumelhart" -> "Rumelhart"``,
    ``"Aaron van den Oord" -> "van den Oord"``."""
    if name in _SURNAME_OVERRIDES:
        return _SURNAME_OVERRIDES[name]
    parts = name.split()
    i = len(parts) - 1
    while i > 1 and parts[i - 1].lower() in _PARTICLES:  # always keep one given name
        i -= 1
    return " ".join(parts[i:])


def _given(name: str) -> str:
    last = surname(name)
    return name[: len(name) - len(last)].strip()


@dataclass(frozen=True)
class Paper:
    id: str                      # python identifier, also the module folder name
    title: str                   # exact title of the paper
    authors: tuple[str, ...]     # every author, full names as printed
    year: int                    # year of `date`
    date: str                    # "YYYY-MM": first public appearance; defines history order
    venue: str                   # e.g. "Nature", "NeurIPS 2017", "ICLR 2015", "arXiv preprint"
    url: str                     # arXiv abs URL where one exists, else DOI / official URL
    era: str                     # key of ERAS: the package the paper lives in
    constraint: str              # one of CONSTRAINTS: the limit this paper lifted
    builds_on: tuple[str, ...]   # ids of earlier papers whose ideas (and code) it uses
    idea: str                    # one sentence, our words: what it changed
    bibtex_type: str = "article"  # "article" | "inproceedings" | "misc"
    container: str = ""          # journal (article) or proceedings title (inproceedings)
    volume: str = ""
    number: str = ""
    pages: str = ""              # BibTeX style, "533--536"
    doi: str = ""
    pub_year: int = 0            # year of the cited venue when it differs from `year`
    also: tuple[str, ...] = ()   # URLs of companion papers folded into this entry

    @property
    def short_authors(self) -> str:
        """``"Rumelhart, Hinton & Williams"`` for up to three authors, else ``"Vaswani et al."``."""
        names = [surname(a) for a in self.authors]
        if len(names) == 1:
            return names[0]
        if len(names) <= 3:
            return ", ".join(names[:-1]) + " & " + names[-1]
        return names[0] + " et al."

    @property
    def module(self) -> str:
        return f"milestones.{self.era}.{self.id}"

    @property
    def arxiv_id(self) -> str | None:
        m = _ARXIV_RE.match(self.url)
        return m.group(1) if m else None

    @property
    def bib_year(self) -> int:
        return self.pub_year or self.year

    @property
    def citation(self) -> str:
        """``"Rumelhart, Hinton & Williams (1986)"``."""
        return f"{self.short_authors} ({self.year})"


def _arxiv(number: str) -> str:
    return ARXIV_ABS + number


NIPS = "Advances in Neural Information Processing Systems"
ICLR = "International Conference on Learning Representations"

# fmt: off
PAPERS: tuple[Paper, ...] = (
    # ---------------------------------------------------------------- 1986-2000
    Paper(
        id="backprop",
        title="Learning representations by back-propagating errors",
        authors=("David E. Rumelhart", "Geoffrey E. Hinton", "Ronald J. Williams"),
        year=1986, date="1986-10", venue="Nature",
        url="https://doi.org/10.1038/323533a0",
        era="foundations", constraint="optimization & regularization", builds_on=(),
        idea="Showed that passing error derivatives backwards through a layered network lets its "
             "hidden units invent their own internal features, so multi-layer networks can be "
             "trained by gradient descent.",
        container="Nature", volume="323", pages="533--536", doi="10.1038/323533a0",
    ),
    Paper(
        id="rnn",
        title="A Learning Algorithm for Continually Running Fully Recurrent Neural Networks",
        authors=("Ronald J. Williams", "David Zipser"),
        year=1989, date="1989-06", venue="Neural Computation",
        url="https://doi.org/10.1162/neco.1989.1.2.270",
        era="sequences", constraint="architecture", builds_on=("backprop",),
        idea="Derived real-time recurrent learning, an exact online gradient for networks with "
             "feedback loops, so a recurrent net can be trained while it runs to carry "
             "information across time steps.",
        container="Neural Computation", volume="1", number="2", pages="270--280",
        doi="10.1162/neco.1989.1.2.270",
    ),
    Paper(
        id="cnn",
        title="Backpropagation Applied to Handwritten Zip Code Recognition",
        authors=("Yann LeCun", "Bernhard Boser", "John S. Denker", "Donnie Henderson",
                 "Richard E. Howard", "Wayne Hubbard", "Lawrence D. Jackel"),
        year=1989, date="1989-12", venue="Neural Computation",
        url="https://doi.org/10.1162/neco.1989.1.4.541",
        era="foundations", constraint="architecture", builds_on=("backprop",),
        idea="Built the geometry of images into the network (small local receptive fields whose "
             "weights are shared across positions), so backpropagation could learn to read "
             "zip-code digits straight from pixels with few free parameters.",
        container="Neural Computation", volume="1", number="4", pages="541--551",
        doi="10.1162/neco.1989.1.4.541",
    ),
    Paper(
        id="weight_decay",
        title="A Simple Weight Decay Can Improve Generalization",
        authors=("Anders Krogh", "John A. Hertz"),
        year=1991, date="1991-12", venue="NIPS 1991",
        url="https://papers.nips.cc/paper/1991/hash/8eefcfdf5990e441f0fb6f3fad709e21-Abstract.html",
        era="optimization", constraint="optimization & regularization", builds_on=("backprop",),
        idea="Explained why penalising the squared size of the weights helps: in linear networks "
             "it removes weight components the data does not need and damps the effect of noisy "
             "targets, which the authors confirmed on NetTalk.",
        bibtex_type="inproceedings", container=NIPS, volume="4", pages="950--957",
    ),
    Paper(
        id="lstm",
        title="Long Short-Term Memory",
        authors=("Sepp Hochreiter", "Jürgen Schmidhuber"),
        year=1997, date="1997-11", venue="Neural Computation",
        url="https://doi.org/10.1162/neco.1997.9.8.1735",
        era="sequences", constraint="architecture", builds_on=("rnn",),
        idea="Gave recurrent networks a memory cell with multiplicative input and output gates "
             "around a self-connection of weight one, so error can flow back unchanged and lags "
             "of over a thousand steps become learnable.",
        container="Neural Computation", volume="9", number="8", pages="1735--1780",
        doi="10.1162/neco.1997.9.8.1735",
    ),
    Paper(
        id="lenet",
        title="Gradient-Based Learning Applied to Document Recognition",
        authors=("Yann LeCun", "Léon Bottou", "Yoshua Bengio", "Patrick Haffner"),
        year=1998, date="1998-11", venue="Proceedings of the IEEE",
        url="https://doi.org/10.1109/5.726791",
        era="foundations", constraint="architecture", builds_on=("cnn", "backprop"),
        idea="Set out LeNet-5 (alternating convolution and subsampling layers feeding a trained "
             "classifier), benchmarked it on the new MNIST digits, and showed that whole "
             "multi-module reading systems can be trained end to end with gradients.",
        container="Proceedings of the IEEE", volume="86", number="11", pages="2278--2324",
        doi="10.1109/5.726791",
    ),
    Paper(
        id="forget_gate",
        title="Learning to Forget: Continual Prediction with LSTM",
        authors=("Felix A. Gers", "Jürgen Schmidhuber", "Fred Cummins"),
        year=1999, date="1999-09", venue="Neural Computation 2000 (first presented at ICANN 1999)",
        url="https://doi.org/10.1162/089976600300015015",
        era="sequences", constraint="architecture", builds_on=("lstm",),
        idea="Added a forget gate that lets an LSTM cell learn when to clear its own state, so it "
             "keeps working on endless input streams that are never cut into separate sequences.",
        container="Neural Computation", volume="12", number="10", pages="2451--2471",
        doi="10.1162/089976600300015015", pub_year=2000,
    ),
    # ---------------------------------------------------------------- 2011-2014
    Paper(
        id="relu",
        title="Deep Sparse Rectifier Neural Networks",
        authors=("Xavier Glorot", "Antoine Bordes", "Yoshua Bengio"),
        year=2011, date="2011-04", venue="AISTATS 2011",
        url="https://proceedings.mlr.press/v15/glorot11a.html",
        era="optimization", constraint="optimization & regularization", builds_on=("backprop",),
        idea="Showed that the rectifier max(0, x) trains deep purely supervised networks as well "
             "as or better than tanh units, without unsupervised pre-training, while giving "
             "sparse codes with exact zeros.",
        bibtex_type="inproceedings",
        container="Proceedings of the Fourteenth International Conference on Artificial "
                  "Intelligence and Statistics",
        volume="15", pages="315--323",
    ),
    Paper(
        id="alexnet",
        title="ImageNet Classification with Deep Convolutional Neural Networks",
        authors=("Alex Krizhevsky", "Ilya Sutskever", "Geoffrey E. Hinton"),
        year=2012, date="2012-12", venue="NIPS 2012",
        url="https://proceedings.neurips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html",
        era="foundations", constraint="compute",
        builds_on=("lenet", "cnn", "relu", "weight_decay", "backprop"),
        idea="Trained a large ReLU convnet on two GPUs with data augmentation, weight decay and "
             "dropout (then known from a 2012 preprint), and won ILSVRC-2012 with 15.3% top-5 "
             "error against 26.2% for the runner-up, which set off the deep learning boom.",
        bibtex_type="inproceedings", container=NIPS, volume="25", pages="1097--1105",
    ),
    Paper(
        id="word2vec",
        title="Efficient Estimation of Word Representations in Vector Space",
        authors=("Tomas Mikolov", "Kai Chen", "Greg Corrado", "Jeffrey Dean"),
        year=2013, date="2013-01", venue="arXiv preprint (ICLR 2013 workshop)",
        url=_arxiv("1301.3781"),
        era="sequences", constraint="compute efficiency", builds_on=("backprop",),
        idea="Stripped neural language models down to the log-linear CBOW and skip-gram models, "
             "which learn word vectors from billions of words in about a day and encode analogies "
             "as vector offsets; the companion paper (Distributed Representations of Words and "
             "Phrases and their Compositionality, arXiv:1310.4546) added negative sampling, "
             "subsampling of frequent words and phrase vectors.",
        bibtex_type="misc",
        also=(_arxiv("1310.4546"),),
    ),
    Paper(
        id="vae",
        title="Auto-Encoding Variational Bayes",
        authors=("Diederik P. Kingma", "Max Welling"),
        year=2013, date="2013-12", venue="ICLR 2014",
        url=_arxiv("1312.6114"),
        era="generative", constraint="optimization & regularization", builds_on=("backprop",),
        idea="Introduced the reparameterisation trick, which makes the variational lower bound "
             "differentiable, so an encoder network and a decoder network can be trained "
             "together by ordinary stochastic gradient descent: the variational autoencoder.",
        bibtex_type="inproceedings", container=ICLR, pub_year=2014,
    ),
    Paper(
        id="encoder_decoder",
        title="Learning Phrase Representations using RNN Encoder-Decoder for Statistical "
              "Machine Translation",
        authors=("Kyunghyun Cho", "Bart van Merrienboer", "Caglar Gulcehre", "Dzmitry Bahdanau",
                 "Fethi Bougares", "Holger Schwenk", "Yoshua Bengio"),
        year=2014, date="2014-06", venue="EMNLP 2014",
        url=_arxiv("1406.1078"),
        era="sequences", constraint="architecture", builds_on=("rnn", "lstm"),
        idea="Joined two RNNs, one reading a phrase into a fixed-length vector and one writing "
             "the translation out of it, and introduced the reset/update-gated hidden unit that "
             "became the GRU.",
        bibtex_type="inproceedings",
        container="Proceedings of the 2014 Conference on Empirical Methods in Natural Language "
                  "Processing (EMNLP)",
        doi="10.3115/v1/D14-1179",
    ),
    Paper(
        id="gan",
        title="Generative Adversarial Nets",
        authors=("Ian J. Goodfellow", "Jean Pouget-Abadie", "Mehdi Mirza", "Bing Xu",
                 "David Warde-Farley", "Sherjil Ozair", "Aaron Courville", "Yoshua Bengio"),
        year=2014, date="2014-06", venue="NIPS 2014",
        url=_arxiv("1406.2661"),
        era="generative", constraint="optimization & regularization", builds_on=("backprop", "relu"),
        idea="Framed generative modelling as a two-player game in which a generator learns to "
             "fool a discriminator, so samples come from a single forward pass with no explicit "
             "likelihood, Markov chain or approximate inference.",
        bibtex_type="inproceedings", container=NIPS, volume="27",
    ),
    Paper(
        id="dropout",
        title="Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
        authors=("Nitish Srivastava", "Geoffrey Hinton", "Alex Krizhevsky", "Ilya Sutskever",
                 "Ruslan Salakhutdinov"),
        year=2014, date="2014-06", venue="JMLR",
        url="https://jmlr.org/papers/v15/srivastava14a.html",
        era="optimization", constraint="optimization & regularization",
        builds_on=("weight_decay", "relu", "alexnet", "backprop"),
        idea="Randomly switches off units during training so they cannot co-adapt, which behaves "
             "like cheaply averaging an exponential number of thinned networks, and documented "
             "large gains in vision, speech, text and computational biology.",
        container="Journal of Machine Learning Research", volume="15", number="56",
        pages="1929--1958",
    ),
    Paper(
        id="attention",
        title="Neural Machine Translation by Jointly Learning to Align and Translate",
        authors=("Dzmitry Bahdanau", "Kyunghyun Cho", "Yoshua Bengio"),
        year=2014, date="2014-09", venue="ICLR 2015",
        url=_arxiv("1409.0473"),
        era="sequences", constraint="architecture", builds_on=("encoder_decoder",),
        idea="Let the decoder take a learned, soft weighted average over all encoder states at "
             "every output word instead of squeezing the source sentence into one fixed-length "
             "vector: the first neural attention mechanism for translation.",
        bibtex_type="inproceedings", container=ICLR, pub_year=2015,
    ),
    Paper(
        id="seq2seq",
        title="Sequence to Sequence Learning with Neural Networks",
        authors=("Ilya Sutskever", "Oriol Vinyals", "Quoc V. Le"),
        year=2014, date="2014-09", venue="NIPS 2014",
        url=_arxiv("1409.3215"),
        era="sequences", constraint="architecture",
        builds_on=("lstm", "forget_gate", "encoder_decoder"),
        idea="Mapped whole input sequences to whole output sequences with one deep LSTM that "
             "encodes and another that decodes, beat a phrase-based system on WMT'14 "
             "English-to-French, and found that reversing the source sentence eases learning.",
        bibtex_type="inproceedings", container=NIPS, volume="27", pages="3104--3112",
    ),
    Paper(
        id="adam",
        title="Adam: A Method for Stochastic Optimization",
        authors=("Diederik P. Kingma", "Jimmy Ba"),
        year=2014, date="2014-12", venue="ICLR 2015",
        url=_arxiv("1412.6980"),
        era="optimization", constraint="optimization & regularization",
        builds_on=("backprop", "dropout"),
        idea="Scales each parameter's step by bias-corrected running averages of the gradient and "
             "of its square, combining momentum with per-parameter step sizes in an optimizer "
             "that needs little tuning.",
        bibtex_type="inproceedings", container=ICLR, pub_year=2015,
    ),
    # ---------------------------------------------------------------- 2015-2016
    Paper(
        id="batchnorm",
        title="Batch Normalization: Accelerating Deep Network Training by Reducing Internal "
              "Covariate Shift",
        authors=("Sergey Ioffe", "Christian Szegedy"),
        year=2015, date="2015-02", venue="ICML 2015",
        url=_arxiv("1502.03167"),
        era="optimization", constraint="optimization & regularization",
        builds_on=("backprop", "relu", "dropout"),
        idea="Standardises every layer's inputs with statistics of the current mini-batch, "
             "followed by a learned scale and shift, which permits far higher learning rates, "
             "tolerates careless initialisation and partly replaces dropout as a regulariser.",
        bibtex_type="inproceedings",
        container="Proceedings of the 32nd International Conference on Machine Learning",
        volume="37", pages="448--456",
    ),
    Paper(
        id="diffusion",
        title="Deep Unsupervised Learning using Nonequilibrium Thermodynamics",
        authors=("Jascha Sohl-Dickstein", "Eric A. Weiss", "Niru Maheswaranathan",
                 "Surya Ganguli"),
        year=2015, date="2015-03", venue="ICML 2015",
        url=_arxiv("1503.03585"),
        era="generative", constraint="architecture", builds_on=("vae", "cnn", "relu", "adam"),
        idea="Destroys the structure of data with a long, fixed chain of small noising steps and "
             "trains a network to undo each step, giving a very flexible generative model whose "
             "likelihood can still be evaluated.",
        bibtex_type="inproceedings",
        container="Proceedings of the 32nd International Conference on Machine Learning",
        volume="37",
    ),
    Paper(
        id="unet",
        title="U-Net: Convolutional Networks for Biomedical Image Segmentation",
        authors=("Olaf Ronneberger", "Philipp Fischer", "Thomas Brox"),
        year=2015, date="2015-05", venue="MICCAI 2015",
        url=_arxiv("1505.04597"),
        era="foundations", constraint="architecture",
        builds_on=("lenet", "alexnet", "relu", "dropout", "cnn", "adam"),
        idea="Mirrored a contracting convolutional path with an expanding one joined by skip "
             "connections, giving precise per-pixel segmentation from very few annotated images; "
             "the same U shape later became the standard denoiser of diffusion models.",
        bibtex_type="inproceedings",
        container="Medical Image Computing and Computer-Assisted Intervention -- MICCAI 2015",
        volume="9351", pages="234--241", doi="10.1007/978-3-319-24574-4_28",
    ),
    Paper(
        id="resnet",
        title="Deep Residual Learning for Image Recognition",
        authors=("Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"),
        year=2015, date="2015-12", venue="CVPR 2016",
        url=_arxiv("1512.03385"),
        era="optimization", constraint="optimization & regularization",
        builds_on=("alexnet", "relu", "batchnorm", "weight_decay", "cnn", "backprop"),
        idea="Had each block learn a residual that is added to an identity shortcut, which cured "
             "the degradation of very deep plain networks and made nets of 152 layers (and "
             "1000+ on CIFAR) trainable.",
        bibtex_type="inproceedings",
        container="Proceedings of the IEEE Conference on Computer Vision and Pattern "
                  "Recognition (CVPR)",
        pages="770--778", doi="10.1109/CVPR.2016.90", pub_year=2016,
    ),
    Paper(
        id="gelu",
        title="Gaussian Error Linear Units (GELUs)",
        authors=("Dan Hendrycks", "Kevin Gimpel"),
        year=2016, date="2016-06", venue="arXiv preprint",
        url=_arxiv("1606.08415"),
        era="optimization", constraint="optimization & regularization",
        builds_on=("relu", "dropout", "adam"),
        idea="Proposed the activation x times Phi(x), the standard normal CDF, which weights an "
             "input by how large it is instead of gating it by its sign, and later became the "
             "default nonlinearity of BERT and the GPT models.",
        bibtex_type="misc",
    ),
    Paper(
        id="layernorm",
        title="Layer Normalization",
        authors=("Jimmy Lei Ba", "Jamie Ryan Kiros", "Geoffrey E. Hinton"),
        year=2016, date="2016-07", venue="arXiv preprint",
        url=_arxiv("1607.06450"),
        era="optimization", constraint="optimization & regularization",
        builds_on=("batchnorm", "rnn", "lstm", "relu", "adam"),
        idea="Normalises with the mean and variance over a layer's units for each single example "
             "rather than over the batch, so training and inference compute the same thing and "
             "recurrent networks can be normalised at every time step.",
        bibtex_type="misc",
    ),
    # ---------------------------------------------------------------- 2017-2019
    Paper(
        id="moe",
        title="Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer",
        authors=("Noam Shazeer", "Azalia Mirhoseini", "Krzysztof Maziarz", "Andy Davis",
                 "Quoc Le", "Geoffrey Hinton", "Jeff Dean"),
        year=2017, date="2017-01", venue="ICLR 2017",
        url=_arxiv("1701.06538"),
        era="sequences", constraint="parameters",
        builds_on=("lstm", "attention", "adam", "dropout", "relu"),
        idea="Inserted a layer of up to thousands of feed-forward experts between LSTM layers, "
             "with a trainable gate sending each example to only a few of them, raising capacity "
             "more than 1000-fold (up to 137B parameters) for little extra computation.",
        bibtex_type="inproceedings", container=ICLR, pub_year=2017,
    ),
    Paper(
        id="transformer",
        title="Attention Is All You Need",
        authors=("Ashish Vaswani", "Noam Shazeer", "Niki Parmar", "Jakob Uszkoreit",
                 "Llion Jones", "Aidan N. Gomez", "Łukasz Kaiser", "Illia Polosukhin"),
        year=2017, date="2017-06", venue="NIPS 2017",
        url=_arxiv("1706.03762"),
        era="transformers", constraint="architecture",
        builds_on=("attention", "seq2seq", "encoder_decoder", "layernorm", "resnet", "adam", "dropout", "relu"),
        idea="Removed recurrence and convolution altogether, building an encoder-decoder from "
             "multi-head self-attention, position-wise feed-forward layers, residual connections "
             "and layer normalisation, which trains in parallel over all positions.",
        bibtex_type="inproceedings", container=NIPS, volume="30",
    ),
    Paper(
        id="ppo",
        title="Proximal Policy Optimization Algorithms",
        authors=("John Schulman", "Filip Wolski", "Prafulla Dhariwal", "Alec Radford",
                 "Oleg Klimov"),
        year=2017, date="2017-07", venue="arXiv preprint",
        url=_arxiv("1707.06347"),
        era="transformers", constraint="optimization & regularization", builds_on=("adam",),
        idea="Replaced a hard trust-region constraint with a clipped probability-ratio objective, "
             "so a policy can run several epochs of minibatch updates on each batch of experience "
             "without straying far from the policy that collected it.",
        bibtex_type="misc",
    ),
    Paper(
        id="vqvae",
        title="Neural Discrete Representation Learning",
        authors=("Aaron van den Oord", "Oriol Vinyals", "Koray Kavukcuoglu"),
        year=2017, date="2017-11", venue="NIPS 2017",
        url=_arxiv("1711.00937"),
        era="generative", constraint="architecture", builds_on=("vae", "resnet", "cnn", "relu", "adam"),
        idea="Gave an autoencoder discrete latents by snapping each encoder output to its nearest "
             "vector in a learned codebook (passing gradients straight through), which avoids "
             "posterior collapse, then modelled the codes with an autoregressive prior.",
        bibtex_type="inproceedings", container=NIPS, volume="30",
    ),
    Paper(
        id="bert",
        title="BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
        authors=("Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova"),
        year=2018, date="2018-10", venue="NAACL 2019",
        url=_arxiv("1810.04805"),
        era="transformers", constraint="data",
        builds_on=("transformer", "layernorm", "gelu", "adam", "weight_decay", "dropout", "word2vec"),
        idea="Pre-trained a Transformer encoder on unlabeled text by predicting masked-out words "
             "from both sides (plus next-sentence prediction), then fine-tuned it with one added "
             "output layer to a new state of the art on eleven language tasks.",
        bibtex_type="inproceedings",
        container="Proceedings of the 2019 Conference of the North American Chapter of the "
                  "Association for Computational Linguistics: Human Language Technologies, "
                  "Volume 1 (Long and Short Papers)",
        pages="4171--4186", doi="10.18653/v1/N19-1423", pub_year=2019,
    ),
    Paper(
        id="gpt2",
        title="Language Models are Unsupervised Multitask Learners",
        authors=("Alec Radford", "Jeffrey Wu", "Rewon Child", "David Luan", "Dario Amodei",
                 "Ilya Sutskever"),
        year=2019, date="2019-02", venue="OpenAI report",
        url="https://cdn.openai.com/better-language-models/"
            "language_models_are_unsupervised_multitask_learners.pdf",
        era="transformers", constraint="data",
        builds_on=("transformer", "gelu", "layernorm", "dropout", "adam", "weight_decay"),
        idea="Trained a 1.5B-parameter decoder-only Transformer on WebText, millions of curated "
             "web pages, and found that a plain language model starts to answer questions, "
             "translate and summarise zero-shot, improving log-linearly with size.",
        bibtex_type="misc",
    ),
    Paper(
        id="vqvae2",
        title="Generating Diverse High-Fidelity Images with VQ-VAE-2",
        authors=("Ali Razavi", "Aaron van den Oord", "Oriol Vinyals"),
        year=2019, date="2019-06", venue="NeurIPS 2019",
        url=_arxiv("1906.00446"),
        era="generative", constraint="architecture", builds_on=("vqvae", "transformer", "cnn", "relu", "adam"),
        idea="Arranged VQ-VAE codes in a multi-scale hierarchy and fitted strong autoregressive "
             "priors with self-attention over them, giving ImageNet samples that rival GANs in "
             "fidelity without their mode collapse.",
        bibtex_type="inproceedings", container=NIPS, volume="32",
    ),
    Paper(
        id="roberta",
        title="RoBERTa: A Robustly Optimized BERT Pretraining Approach",
        authors=("Yinhan Liu", "Myle Ott", "Naman Goyal", "Jingfei Du", "Mandar Joshi",
                 "Danqi Chen", "Omer Levy", "Mike Lewis", "Luke Zettlemoyer",
                 "Veselin Stoyanov"),
        year=2019, date="2019-07", venue="arXiv preprint",
        url=_arxiv("1907.11692"),
        era="transformers", constraint="data", builds_on=("bert", "gpt2", "layernorm", "gelu", "adam", "weight_decay"),
        idea="Repeated BERT pre-training with care (longer, larger batches, ten times more text, "
             "dynamic masking, no next-sentence task) and showed BERT had been badly "
             "undertrained, matching every model published after it.",
        bibtex_type="misc",
    ),
    Paper(
        id="rlhf",
        title="Fine-Tuning Language Models from Human Preferences",
        authors=("Daniel M. Ziegler", "Nisan Stiennon", "Jeffrey Wu", "Tom B. Brown",
                 "Alec Radford", "Dario Amodei", "Paul Christiano", "Geoffrey Irving"),
        year=2019, date="2019-09", venue="arXiv preprint",
        url=_arxiv("1909.08593"),
        era="transformers", constraint="alignment", builds_on=("ppo", "gpt2"),
        idea="Learned a reward model from human comparisons of samples and fine-tuned a "
             "pre-trained GPT-2 against it with PPO, with a KL penalty toward the original model, "
             "for stylistic continuation and summarisation: the RLHF recipe for language models.",
        bibtex_type="misc",
    ),
    Paper(
        id="t5",
        title="Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer",
        authors=("Colin Raffel", "Noam Shazeer", "Adam Roberts", "Katherine Lee",
                 "Sharan Narang", "Michael Matena", "Yanqi Zhou", "Wei Li", "Peter J. Liu"),
        year=2019, date="2019-10", venue="JMLR 2020",
        url=_arxiv("1910.10683"),
        era="transformers", constraint="data",
        builds_on=("transformer", "bert", "layernorm", "dropout", "relu", "adam"),
        idea="Cast every language task as text in, text out, built the C4 web corpus, and "
             "compared architectures, objectives and data sets in one framework before scaling "
             "the best recipe to 11B parameters.",
        container="Journal of Machine Learning Research", volume="21", number="140",
        pages="1--67", pub_year=2020,
    ),
    # ---------------------------------------------------------------- 2020-2021
    Paper(
        id="scaling_laws",
        title="Scaling Laws for Neural Language Models",
        authors=("Jared Kaplan", "Sam McCandlish", "Tom Henighan", "Tom B. Brown",
                 "Benjamin Chess", "Rewon Child", "Scott Gray", "Alec Radford", "Jeffrey Wu",
                 "Dario Amodei"),
        year=2020, date="2020-01", venue="arXiv preprint",
        url=_arxiv("2001.08361"),
        era="frontier", constraint="compute", builds_on=("gpt2", "lstm", "adam"),
        idea="Measured that language-model loss falls as smooth power laws in parameters, data "
             "and compute across many orders of magnitude, and used the fits to say how a fixed "
             "compute budget should be split between model size and training.",
        bibtex_type="misc",
    ),
    Paper(
        id="gpt3",
        title="Language Models are Few-Shot Learners",
        authors=("Tom B. Brown", "Benjamin Mann", "Nick Ryder", "Melanie Subbiah",
                 "Jared Kaplan", "Prafulla Dhariwal", "Arvind Neelakantan", "Pranav Shyam",
                 "Girish Sastry", "Amanda Askell", "Sandhini Agarwal", "Ariel Herbert-Voss",
                 "Gretchen Krueger", "Tom Henighan", "Rewon Child", "Aditya Ramesh",
                 "Daniel M. Ziegler", "Jeffrey Wu", "Clemens Winter", "Christopher Hesse",
                 "Mark Chen", "Eric Sigler", "Mateusz Litwin", "Scott Gray", "Benjamin Chess",
                 "Jack Clark", "Christopher Berner", "Sam McCandlish", "Alec Radford",
                 "Ilya Sutskever", "Dario Amodei"),
        year=2020, date="2020-05", venue="NeurIPS 2020",
        url=_arxiv("2005.14165"),
        era="transformers", constraint="parameters",
        builds_on=("gpt2", "scaling_laws", "transformer", "adam", "weight_decay"),
        idea="Scaled a decoder-only Transformer to 175B parameters and showed it can take on new "
             "tasks from a handful of examples written into the prompt (in-context learning), "
             "with no gradient updates at all.",
        bibtex_type="inproceedings", container=NIPS, volume="33",
    ),
    Paper(
        id="ddpm",
        title="Denoising Diffusion Probabilistic Models",
        authors=("Jonathan Ho", "Ajay Jain", "Pieter Abbeel"),
        year=2020, date="2020-06", venue="NeurIPS 2020",
        url=_arxiv("2006.11239"),
        era="generative", constraint="optimization & regularization",
        builds_on=("diffusion", "unet", "resnet", "transformer", "cnn", "adam"),
        idea="Trained a U-Net to predict the noise added at a random diffusion step, a reweighted "
             "variational bound tied to denoising score matching, and so made diffusion models "
             "produce images rivalling GANs (FID 3.17 on CIFAR-10).",
        bibtex_type="inproceedings", container=NIPS, volume="33",
    ),
    Paper(
        id="vit",
        title="An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
        authors=("Alexey Dosovitskiy", "Lucas Beyer", "Alexander Kolesnikov",
                 "Dirk Weissenborn", "Xiaohua Zhai", "Thomas Unterthiner", "Mostafa Dehghani",
                 "Matthias Minderer", "Georg Heigold", "Sylvain Gelly", "Jakob Uszkoreit",
                 "Neil Houlsby"),
        year=2020, date="2020-10", venue="ICLR 2021",
        url=_arxiv("2010.11929"),
        era="transformers", constraint="architecture",
        builds_on=("transformer", "bert", "layernorm", "gelu", "adam", "cnn", "resnet", "dropout", "weight_decay"),
        idea="Cut an image into 16x16 patches, embedded each as a token and fed the sequence to an "
             "unmodified Transformer encoder, which matches or beats convolutional networks once "
             "pre-trained on enough images.",
        bibtex_type="inproceedings", container=ICLR, pub_year=2021,
    ),
    Paper(
        id="improved_ddpm",
        title="Improved Denoising Diffusion Probabilistic Models",
        authors=("Alex Nichol", "Prafulla Dhariwal"),
        year=2021, date="2021-02", venue="ICML 2021",
        url=_arxiv("2102.09672"),
        era="generative", constraint="compute efficiency", builds_on=("ddpm", "adam"),
        idea="Learned the variances of the reverse process and switched to a cosine noise "
             "schedule with a hybrid loss, giving DDPMs competitive likelihoods and letting them "
             "sample well in far fewer steps.",
        bibtex_type="inproceedings",
        container="Proceedings of the 38th International Conference on Machine Learning",
        volume="139",
    ),
    Paper(
        id="dalle",
        title="Zero-Shot Text-to-Image Generation",
        authors=("Aditya Ramesh", "Mikhail Pavlov", "Gabriel Goh", "Scott Gray", "Chelsea Voss",
                 "Alec Radford", "Mark Chen", "Ilya Sutskever"),
        year=2021, date="2021-02", venue="ICML 2021",
        url=_arxiv("2102.12092"),
        era="generative", constraint="parameters",
        builds_on=("transformer", "gpt3", "vae", "vqvae"),
        idea="Modelled caption tokens followed by discrete-VAE image tokens as one stream with a "
             "12B-parameter autoregressive Transformer trained on 250 million image-text pairs, "
             "drawing images from captions zero-shot.",
        bibtex_type="inproceedings",
        container="Proceedings of the 38th International Conference on Machine Learning",
        volume="139",
    ),
    Paper(
        id="clip",
        title="Learning Transferable Visual Models From Natural Language Supervision",
        authors=("Alec Radford", "Jong Wook Kim", "Chris Hallacy", "Aditya Ramesh",
                 "Gabriel Goh", "Sandhini Agarwal", "Girish Sastry", "Amanda Askell",
                 "Pamela Mishkin", "Jack Clark", "Gretchen Krueger", "Ilya Sutskever"),
        year=2021, date="2021-02", venue="ICML 2021",
        url=_arxiv("2103.00020"),
        era="generative", constraint="data",
        builds_on=("vit", "transformer", "gpt2", "resnet"),
        idea="Trained an image encoder and a text encoder contrastively to pick out the right "
             "caption for each of 400 million web images, so written class descriptions turn it "
             "into a zero-shot classifier for tasks it never saw.",
        bibtex_type="inproceedings",
        container="Proceedings of the 38th International Conference on Machine Learning",
        volume="139",
    ),
    Paper(
        id="rope",
        title="RoFormer: Enhanced Transformer with Rotary Position Embedding",
        authors=("Jianlin Su", "Yu Lu", "Shengfeng Pan", "Ahmed Murtadha", "Bo Wen",
                 "Yunfeng Liu"),
        year=2021, date="2021-04", venue="Neurocomputing 2024",
        url=_arxiv("2104.09864"),
        era="frontier", constraint="architecture", builds_on=("transformer", "bert"),
        idea="Encoded position by rotating pairs of query and key coordinates through "
             "position-dependent angles, so attention scores depend only on relative distance "
             "while each token still carries its absolute position.",
        container="Neurocomputing", volume="568", pages="127063", doi="10.1016/j.neucom.2023.127063",
        pub_year=2024,
    ),
    Paper(
        id="guided_diffusion",
        title="Diffusion Models Beat GANs on Image Synthesis",
        authors=("Prafulla Dhariwal", "Alex Nichol"),
        year=2021, date="2021-05", venue="NeurIPS 2021",
        url=_arxiv("2105.05233"),
        era="generative", constraint="architecture",
        builds_on=("improved_ddpm", "ddpm", "unet", "resnet", "transformer"),
        idea="Tuned the diffusion U-Net through ablations and added classifier guidance, pushing "
             "samples along the gradient of a classifier trained on noisy images, so diffusion "
             "beat the best GANs on ImageNet FID while trading diversity for fidelity at will.",
        bibtex_type="inproceedings", container=NIPS, volume="34",
    ),
    Paper(
        id="lora",
        title="LoRA: Low-Rank Adaptation of Large Language Models",
        authors=("Edward J. Hu", "Yelong Shen", "Phillip Wallis", "Zeyuan Allen-Zhu",
                 "Yuanzhi Li", "Shean Wang", "Lu Wang", "Weizhu Chen"),
        year=2021, date="2021-06", venue="ICLR 2022",
        url=_arxiv("2106.09685"),
        era="transformers", constraint="compute efficiency",
        builds_on=("transformer", "roberta", "gpt2", "gpt3"),
        idea="Froze the pre-trained weights and learned each weight change as the product of two "
             "thin low-rank matrices, cutting trainable parameters for GPT-3 by up to 10,000x "
             "with no extra latency once the update is merged.",
        bibtex_type="inproceedings", container=ICLR, pub_year=2022,
    ),
    Paper(
        id="latent_diffusion",
        title="High-Resolution Image Synthesis with Latent Diffusion Models",
        authors=("Robin Rombach", "Andreas Blattmann", "Dominik Lorenz", "Patrick Esser",
                 "Björn Ommer"),
        year=2021, date="2021-12", venue="CVPR 2022",
        url=_arxiv("2112.10752"),
        era="generative", constraint="compute efficiency",
        builds_on=("ddpm", "guided_diffusion", "unet", "vae", "vqvae", "gan", "transformer"),
        idea="Ran diffusion inside the compact latent space of a pre-trained autoencoder and "
             "conditioned the U-Net through cross-attention, cutting the cost of high-resolution "
             "synthesis enough to become the basis of Stable Diffusion.",
        bibtex_type="inproceedings",
        container="Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern "
                  "Recognition (CVPR)",
        doi="10.1109/CVPR52688.2022.01042", pub_year=2022,
    ),
    # ---------------------------------------------------------------- 2022-2024
    Paper(
        id="instructgpt",
        title="Training language models to follow instructions with human feedback",
        authors=("Long Ouyang", "Jeff Wu", "Xu Jiang", "Diogo Almeida", "Carroll L. Wainwright",
                 "Pamela Mishkin", "Chong Zhang", "Sandhini Agarwal", "Katarina Slama",
                 "Alex Ray", "John Schulman", "Jacob Hilton", "Fraser Kelton", "Luke Miller",
                 "Maddie Simens", "Amanda Askell", "Peter Welinder", "Paul Christiano",
                 "Jan Leike", "Ryan Lowe"),
        year=2022, date="2022-03", venue="NeurIPS 2022",
        url=_arxiv("2203.02155"),
        era="transformers", constraint="alignment", builds_on=("rlhf", "ppo", "gpt3"),
        idea="Fine-tuned GPT-3 on labeler demonstrations, fitted a reward model to labeler "
             "rankings and optimised against it with PPO, so that people preferred the outputs "
             "of a 1.3B InstructGPT to those of the 175B GPT-3.",
        bibtex_type="inproceedings", container=NIPS, volume="35",
    ),
    Paper(
        id="chinchilla",
        title="Training Compute-Optimal Large Language Models",
        authors=("Jordan Hoffmann", "Sebastian Borgeaud", "Arthur Mensch", "Elena Buchatskaya",
                 "Trevor Cai", "Eliza Rutherford", "Diego de Las Casas", "Lisa Anne Hendricks",
                 "Johannes Welbl", "Aidan Clark", "Tom Hennigan", "Eric Noland",
                 "Katie Millican", "George van den Driessche", "Bogdan Damoc", "Aurelia Guy",
                 "Simon Osindero", "Karen Simonyan", "Erich Elsen", "Jack W. Rae",
                 "Oriol Vinyals", "Laurent Sifre"),
        year=2022, date="2022-03", venue="NeurIPS 2022",
        url=_arxiv("2203.15556"),
        era="frontier", constraint="data", builds_on=("scaling_laws", "transformer", "adam"),
        idea="Trained over 400 models to show that, for a fixed compute budget, parameters and "
             "training tokens should grow in equal proportion, then beat the 280B Gopher with the "
             "70B Chinchilla trained on four times more data for the same compute.",
        bibtex_type="inproceedings", container=NIPS, volume="35",
    ),
    Paper(
        id="hh_rlhf",
        title="Training a Helpful and Harmless Assistant with Reinforcement Learning from "
              "Human Feedback",
        authors=("Yuntao Bai", "Andy Jones", "Kamal Ndousse", "Amanda Askell", "Anna Chen",
                 "Nova DasSarma", "Dawn Drain", "Stanislav Fort", "Deep Ganguli", "Tom Henighan",
                 "Nicholas Joseph", "Saurav Kadavath", "Jackson Kernion", "Tom Conerly",
                 "Sheer El-Showk", "Nelson Elhage", "Zac Hatfield-Dodds", "Danny Hernandez",
                 "Tristan Hume", "Scott Johnston", "Shauna Kravec", "Liane Lovitt", "Neel Nanda",
                 "Catherine Olsson", "Dario Amodei", "Tom Brown", "Jack Clark",
                 "Sam McCandlish", "Chris Olah", "Ben Mann", "Jared Kaplan"),
        year=2022, date="2022-04", venue="arXiv preprint",
        url=_arxiv("2204.05862"),
        era="transformers", constraint="alignment", builds_on=("rlhf", "ppo", "instructgpt"),
        idea="Trained a dialogue assistant to be both helpful and harmless with preference models "
             "and RLHF, refreshing data and models weekly from new human feedback, and observed "
             "that the reward gained rises about in step with the square root of how far (in KL) "
             "the policy has moved from where it started.",
        bibtex_type="misc",
    ),
    Paper(
        id="dalle2",
        title="Hierarchical Text-Conditional Image Generation with CLIP Latents",
        authors=("Aditya Ramesh", "Prafulla Dhariwal", "Alex Nichol", "Casey Chu", "Mark Chen"),
        year=2022, date="2022-04", venue="arXiv preprint",
        url=_arxiv("2204.06125"),
        era="generative", constraint="architecture",
        builds_on=("clip", "ddpm", "improved_ddpm", "guided_diffusion", "transformer"),
        idea="Split text-to-image into a prior that turns a caption into a CLIP image embedding "
             "and a diffusion decoder that turns the embedding into pixels, which improves "
             "diversity and allows image variations and language-guided edits.",
        bibtex_type="misc",
    ),
    Paper(
        id="flash_attention",
        title="FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness",
        authors=("Tri Dao", "Daniel Y. Fu", "Stefano Ermon", "Atri Rudra", "Christopher Ré"),
        year=2022, date="2022-05", venue="NeurIPS 2022",
        url=_arxiv("2205.14135"),
        era="frontier", constraint="compute efficiency",
        builds_on=("transformer", "bert", "gpt2"),
        idea="Computed exact attention tile by tile in fast on-chip SRAM, recomputing instead of "
             "storing the attention matrix, so memory grows linearly with sequence length and "
             "training speeds up by cutting traffic to GPU main memory.",
        bibtex_type="inproceedings", container=NIPS, volume="35",
    ),
    Paper(
        id="classifier_free_guidance",
        title="Classifier-Free Diffusion Guidance",
        authors=("Jonathan Ho", "Tim Salimans"),
        year=2022, date="2022-07",
        venue="arXiv preprint (short version at a NeurIPS 2021 workshop)",
        url=_arxiv("2207.12598"),
        era="frontier", constraint="optimization & regularization",
        builds_on=("ddpm", "improved_ddpm", "guided_diffusion"),
        idea="Trained one diffusion model with its conditioning randomly dropped, then at "
             "sampling time pushed the conditional prediction further away from the "
             "unconditional one, trading diversity for fidelity without a separate classifier.",
        bibtex_type="misc",
    ),
    Paper(
        id="flow_matching",
        title="Flow Matching for Generative Modeling",
        authors=("Yaron Lipman", "Ricky T. Q. Chen", "Heli Ben-Hamu", "Maximilian Nickel",
                 "Matt Le"),
        year=2022, date="2022-10", venue="ICLR 2023",
        url=_arxiv("2210.02747"),
        era="frontier", constraint="optimization & regularization",
        builds_on=("ddpm", "unet", "guided_diffusion"),
        idea="Trained continuous normalizing flows without simulating them by regressing a "
             "network onto the velocity fields of simple per-sample probability paths; "
             "straight optimal-transport paths train and sample faster than diffusion paths.",
        bibtex_type="inproceedings", container=ICLR, pub_year=2023,
    ),
    Paper(
        id="llama",
        title="LLaMA: Open and Efficient Foundation Language Models",
        authors=("Hugo Touvron", "Thibaut Lavril", "Gautier Izacard", "Xavier Martinet",
                 "Marie-Anne Lachaux", "Timothée Lacroix", "Baptiste Rozière", "Naman Goyal",
                 "Eric Hambro", "Faisal Azhar", "Aurelien Rodriguez", "Armand Joulin",
                 "Edouard Grave", "Guillaume Lample"),
        year=2023, date="2023-02", venue="arXiv preprint",
        url=_arxiv("2302.13971"),
        era="frontier", constraint="compute efficiency",
        builds_on=("transformer", "gpt3", "chinchilla", "rope", "layernorm", "adam",
                   "flash_attention"),
        idea="Trained 7B to 65B decoder-only models on public data only, for more tokens than "
             "compute-optimal so they are cheap to run, with pre-normalisation by RMSNorm, "
             "SwiGLU feed-forward layers and rotary embeddings; grouped-query attention came "
             "later, with Llama 2.",
        bibtex_type="misc",
    ),
    Paper(
        id="dpo",
        title="Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
        authors=("Rafael Rafailov", "Archit Sharma", "Eric Mitchell", "Stefano Ermon",
                 "Christopher D. Manning", "Chelsea Finn"),
        year=2023, date="2023-05", venue="NeurIPS 2023",
        url=_arxiv("2305.18290"),
        era="frontier", constraint="alignment",
        builds_on=("rlhf", "ppo", "instructgpt", "hh_rlhf", "gpt2"),
        idea="Used the closed-form optimum of the KL-regularised RLHF objective to fit human "
             "preferences with a plain classification loss on the policy's log-probability "
             "ratios, removing the separate reward model and the RL loop.",
        bibtex_type="inproceedings", container=NIPS, volume="36",
    ),
    Paper(
        id="mamba",
        title="Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
        authors=("Albert Gu", "Tri Dao"),
        year=2023, date="2023-12", venue="arXiv preprint",
        url=_arxiv("2312.00752"),
        era="frontier", constraint="compute efficiency",
        builds_on=("rnn", "lstm", "transformer", "flash_attention", "llama"),
        idea="Made the parameters of a state-space layer depend on the current input so it can "
             "choose what to keep or forget, and evaluated it with a hardware-aware parallel "
             "scan, matching Transformer language models with cost linear in sequence length.",
        bibtex_type="misc",
    ),
    Paper(
        id="mixtral",
        title="Mixtral of Experts",
        authors=("Albert Q. Jiang", "Alexandre Sablayrolles", "Antoine Roux", "Arthur Mensch",
                 "Blanche Savary", "Chris Bamford", "Devendra Singh Chaplot",
                 "Diego de las Casas", "Emma Bou Hanna", "Florian Bressand", "Gianna Lengyel",
                 "Guillaume Bour", "Guillaume Lample", "Lélio Renard Lavaud", "Lucile Saulnier",
                 "Marie-Anne Lachaux", "Pierre Stock", "Sandeep Subramanian", "Sophia Yang",
                 "Szymon Antoniak", "Teven Le Scao", "Théophile Gervet", "Thibaut Lavril",
                 "Thomas Wang", "Timothée Lacroix", "William El Sayed"),
        year=2024, date="2024-01", venue="arXiv preprint",
        url=_arxiv("2401.04088"),
        era="frontier", constraint="parameters",
        builds_on=("moe", "transformer", "llama", "rope"),
        idea="Swapped every feed-forward block of a Mistral-7B-style Transformer for eight "
             "experts and routed each token to two of them, so a token touches about 13B of 47B "
             "parameters while matching or beating Llama 2 70B.",
        bibtex_type="misc",
    ),
    Paper(
        id="grpo",
        title="DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models",
        authors=("Zhihong Shao", "Peiyi Wang", "Qihao Zhu", "Runxin Xu", "Junxiao Song",
                 "Xiao Bi", "Haowei Zhang", "Mingchuan Zhang", "Y. K. Li", "Y. Wu", "Daya Guo"),
        year=2024, date="2024-02", venue="arXiv preprint",
        url=_arxiv("2402.03300"),
        era="frontier", constraint="compute efficiency",
        builds_on=("ppo", "instructgpt", "dpo", "llama"),
        idea="Introduced Group Relative Policy Optimization, which drops PPO's learned value "
             "network and instead scores each sampled answer against the other answers to the "
             "same question, saving memory while strengthening mathematical reasoning.",
        bibtex_type="misc",
    ),
)
# fmt: on

_BY_ID: dict[str, Paper] = {p.id: p for p in PAPERS}


def get(paper_id: str) -> Paper:
    """The paper with this id; ``KeyError`` if there is none."""
    try:
        return _BY_ID[paper_id]
    except KeyError:
        raise KeyError(f"unknown paper id {paper_id!r}; known ids: {', '.join(_BY_ID)}") from None


def ids() -> list[str]:
    """All paper ids in history order."""
    return [p.id for p in PAPERS]


def in_era(era: str) -> list[Paper]:
    """The papers of one package, in history order; ``KeyError`` for an unknown era."""
    if era not in ERAS:
        raise KeyError(f"unknown era {era!r}; known eras: {', '.join(ERAS)}")
    return [p for p in PAPERS if p.era == era]


# ------------------------------------------------------------------------------------- BibTeX

_BIB_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%",
                "$": r"\$", "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}
_STOPWORDS = frozenset({"a", "an", "the", "on", "of", "for", "with", "to", "in", "and", "by",
                        "using", "from", "at", "is", "are"})


def _escape(text: str) -> str:
    """Escape the characters TeX treats specially so a field value has balanced braces."""
    return "".join(_BIB_SPECIAL.get(ch, ch) for ch in text)


def _verbatim(text: str) -> str:
    """URLs, DOIs and eprints go into BibTeX unescaped (they are typeset verbatim)."""
    if any(ch in text for ch in "{}\\ \n"):
        raise ValueError(f"cannot put {text!r} verbatim into BibTeX")
    return text


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _bib_key(paper: Paper) -> str:
    last = _ascii_word(surname(paper.authors[0]).split()[-1])
    words = [w for w in (_ascii_word(t) for t in paper.title.split()) if w]
    first = next((w for w in words if w not in _STOPWORDS), words[0])
    return f"{last}{paper.bib_year}{first}"


def _bib_name(name: str) -> str:
    given = _given(name)
    last = surname(name)
    return _escape(f"{last}, {given}" if given else last)


def bibtex(paper: Paper) -> str:
    """A BibTeX entry for ``paper`` (key like ``rumelhart1986learning``)."""
    if paper.bibtex_type not in ("article", "inproceedings", "misc"):
        raise ValueError(f"{paper.id}: unsupported bibtex_type {paper.bibtex_type!r}")
    fields: list[tuple[str, str]] = [
        ("title", "{" + _escape(paper.title) + "}"),  # inner braces keep the capitalisation
        ("author", " and ".join(_bib_name(a) for a in paper.authors)),
    ]
    if paper.container:
        fields.append(("journal" if paper.bibtex_type == "article" else "booktitle",
                       _escape(paper.container)))
    for name in ("volume", "number", "pages"):
        value = getattr(paper, name)
        if value:
            fields.append((name, _escape(value)))
    fields.append(("year", str(paper.bib_year)))
    arxiv = paper.arxiv_id
    if paper.bibtex_type == "misc":
        if not arxiv:
            fields.append(("howpublished", _escape(paper.venue)))
        elif paper.venue != "arXiv preprint":
            fields.append(("note", _escape(paper.venue)))
    if paper.doi:
        fields.append(("doi", _verbatim(paper.doi)))
    fields.append(("url", _verbatim(paper.url)))
    if arxiv:
        fields.append(("eprint", arxiv))
        fields.append(("archivePrefix", "arXiv"))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{paper.bibtex_type}{{{_bib_key(paper)},\n{body}\n}}\n"


# --------------------------------------------------------------------------------- checking

def validate(papers: tuple[Paper, ...] = PAPERS) -> list[str]:
    """Every consistency problem in ``papers`` (empty when the catalog is sound)."""
    problems: list[str] = []
    position: dict[str, int] = {}
    for i, p in enumerate(papers):
        if not p.id.isidentifier():
            problems.append(f"{p.id!r}: id is not a Python identifier")
        if p.id in position:
            problems.append(f"{p.id}: duplicate id")
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", p.date):
            problems.append(f"{p.id}: malformed date {p.date!r}")
        elif int(p.date[:4]) != p.year:
            problems.append(f"{p.id}: year {p.year} does not match date {p.date}")
        if i and p.date < papers[i - 1].date:
            problems.append(f"{p.id}: dated {p.date}, before its predecessor {papers[i - 1].id}")
        if p.era not in ERAS:
            problems.append(f"{p.id}: unknown era {p.era!r}")
        if p.constraint not in CONSTRAINTS:
            problems.append(f"{p.id}: unknown constraint {p.constraint!r}")
        if not p.authors or not p.title or not p.idea or not p.venue:
            problems.append(f"{p.id}: empty title, authors, idea or venue")
        for url in (p.url, *p.also):
            if not url.startswith("https://"):
                problems.append(f"{p.id}: url {url!r} is not https")
            if url.startswith("https://arxiv.org/") and not _ARXIV_RE.match(url):
                problems.append(f"{p.id}: malformed arXiv url {url!r}")
        if p.arxiv_id:  # the id carries the announcement month: v1 is that month or the one before
            year, month = 2000 + int(p.arxiv_id[:2]), int(p.arxiv_id[2:4])
            before = f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
            if p.date not in (f"{year}-{month:02d}", before):
                problems.append(f"{p.id}: date {p.date} does not fit arXiv id {p.arxiv_id}")
        if p.pub_year and p.pub_year < p.year:
            problems.append(f"{p.id}: pub_year {p.pub_year} before first appearance")
        if p.bibtex_type not in ("article", "inproceedings", "misc"):
            problems.append(f"{p.id}: unknown bibtex_type {p.bibtex_type!r}")
        if p.bibtex_type != "misc" and not p.container:
            problems.append(f"{p.id}: {p.bibtex_type} needs a journal or booktitle")
        if not p.builds_on and p.id != "backprop":
            problems.append(f"{p.id}: builds on nothing")
        if len(set(p.builds_on)) != len(p.builds_on):
            problems.append(f"{p.id}: repeated builds_on entry")
        for dep in p.builds_on:
            if dep not in position:
                problems.append(f"{p.id}: builds on {dep!r}, which is not earlier in the catalog")
        position.setdefault(p.id, i)
    return problems
