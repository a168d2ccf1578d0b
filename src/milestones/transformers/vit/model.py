"""The Vision Transformer: an image is worth 16x16 words (Dosovitskiy et al., 2020).

Convolutional networks (../../foundations/cnn, ../../optimization/resnet) build two assumptions about
images into their layers: what matters is local (a 3x3 kernel sees a pixel's neighbours), and it
matters the same way everywhere (one kernel slides over the whole image). ViT drops both. It cuts
the image into P x P patches, treats each patch as a word, and hands the sentence to the standard
Transformer encoder (../transformer), nearly unchanged. Locality and translation equivariance must
then be learnt from data, and the paper's finding is that with enough data they are.

With an image x (C, H, W), patches of side P and N = HW / P^2 patches, read row by row:

    z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos        E: (P^2 C, D), E_pos: (N + 1, D)     (1)
    z'_l = MSA(LN(z_(l-1))) + z_(l-1)                       l = 1 .. L                              (2)
    z_l = MLP(LN(z'_l)) + z'_l,  MLP(h) = GELU(h W_1 + b_1) W_2 + b_2                               (3)
    y = LN(z_L^0)                                           the class token's final state          (4)
    logits = y W_head + b_head

(the equation numbers are the paper's). x_p^i is the i-th patch flattened to P^2 C numbers; one
linear map E turns every patch into a D-dimensional token, which is exactly a convolution with
kernel P and stride P (the `Conv2d` below, with the same weights reshaped). x_class is a learned
token with no image content, in front of the sequence as in BERT: attention lets it gather what the
patches say, and after L layers its state alone is classified. E_pos are learned position
embeddings, one per slot (1-D: the grid's layout is not told to the model; the paper found 2-D and
relative variants no better, Table 8). The encoder is the Transformer's with the normalisation
moved before each sublayer (pre-LN, as in GPT-2; ../../optimization/layernorm), GELU
(../../optimization/gelu) in the MLP, and one final LayerNorm.

The only image-specific choices left are cutting the patches and, when fine-tuning at another
resolution, interpolating E_pos on the 2-D grid (not done here). Everything else a CNN knows about
images, ViT learns: so it loses to a ResNet trained on ImageNet alone and wins after pre-training on
JFT-300M (Figures 3 and 4); our experiment reproduces that trade in miniature.

MSA is multi-head self-attention with no mask: every token sees every token. It is the Transformer's
own written-out attention, imported from ../transformer (for the 17 tokens of our experiment it is
faster on a CPU than the fused `F.scaled_dot_product_attention`, which test_transformer.py proves
equal to it). nn.LayerNorm and F.gelu are proven equal to ours in test_layernorm.py and
test_gelu.py, nn.Conv2d in test_cnn.py, and F.dropout / nn.Dropout in test_dropout.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from milestones.core import interop
from milestones.transformers.transformer.model import attention_weights


@dataclass
class ViTConfig:
    """ViT-B/16 on 224 x 224 ImageNet images by default (86M weights); the paper's Table 1."""

    image_size: int = 224
    patch_size: int = 16
    in_channels: int = 3
    n_classes: int = 1000
    dim: int = 768  # D, the width of every token
    depth: int = 12  # L layers
    heads: int = 12
    mlp_dim: int = 3072  # the hidden width of the MLP (4D in every model of Table 1)
    dropout: float = 0.0  # after the embeddings and every sublayer (0.1 when training on ImageNet alone)
    attention_dropout: float = 0.0  # on the attention weights
    layer_norm_eps: float = 1e-6  # the paper's code (Flax's default); Hugging Face's ViTConfig says 1e-12

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class PatchEmbedding(nn.Module):
    """x_p^i E for every patch i: (B, C, H, W) -> (B, N, D), patches in row-major order."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        if config.image_size % config.patch_size:
            raise ValueError(f"image_size {config.image_size} must divide into patches of {config.patch_size}")
        # A P x P kernel moved P pixels at a time sees each patch once: one linear map per patch.
        self.projection = nn.Conv2d(config.in_channels, config.dim, config.patch_size, stride=config.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x).flatten(2).transpose(1, 2)  # (B, D, H/P, W/P) -> (B, N, D)


class SelfAttention(nn.Module):
    """MSA of equation (2): h heads of d = D / h dimensions, every token attending to every token."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        if config.dim % config.heads:
            raise ValueError(f"dim ({config.dim}) must divide into {config.heads} heads")
        self.heads, self.attention_dropout = config.heads, config.attention_dropout
        self.query = nn.Linear(config.dim, config.dim)  # [W_1^Q ... W_h^Q]
        self.key = nn.Linear(config.dim, config.dim)
        self.value = nn.Linear(config.dim, config.dim)
        self.out = nn.Linear(config.dim, config.dim)  # W^O

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D)."""
        q, k, v = (f(x).unflatten(-1, (self.heads, -1)).transpose(1, 2) for f in (self.query, self.key, self.value))
        weights = attention_weights(q, k)  # the Transformer's softmax(q k^T / sqrt(d)), every head: (B, h, T, T)
        y = F.dropout(weights, self.attention_dropout, self.training) @ v  # (B, h, T, d)
        return self.out(y.transpose(1, 2).flatten(2))  # Concat(head_1..head_h) W^O


class MLP(nn.Module):
    """Equation (3)'s MLP, D -> mlp_dim -> D, with the exact GELU x Phi(x), as Hugging Face's ViT (the
    paper's JAX code calls jax.nn.gelu, whose default is GPT-2's tanh approximation; they differ by < 1e-3)."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.up = nn.Linear(config.dim, config.mlp_dim)  # W_1
        self.down = nn.Linear(config.mlp_dim, config.dim)  # W_2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Equations (2) and (3): z' = z + MSA(LN(z)), then z' + MLP(LN(z')); pre-LN."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.attention = SelfAttention(config)
        self.mlp_norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z + self.dropout(self.attention(self.attention_norm(z)))
        return z + self.dropout(self.mlp(self.mlp_norm(z)))


class ViT(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        self.patch_embedding = PatchEmbedding(config)  # E
        self.class_token = nn.Parameter(torch.zeros(1, 1, config.dim))  # x_class
        self.position_embedding = nn.Parameter(torch.zeros(1, config.n_patches + 1, config.dim))  # E_pos
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.final_norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.dim, config.n_classes)
        # The paper's code: Xavier-uniform linear maps, LeCun-normal patches, E_pos ~ N(0, 0.02^2), zero
        # class token and zero head (every class starts equally likely).
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        fan_in = config.in_channels * config.patch_size ** 2
        nn.init.trunc_normal_(self.patch_embedding.projection.weight, std=fan_in ** -0.5)
        nn.init.zeros_(self.patch_embedding.projection.bias)
        nn.init.normal_(self.position_embedding, std=0.02)
        nn.init.zeros_(self.head.weight)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Equations (1), (2), (3) and (4): images (B, C, H, W) -> y (B, D), the class token's final state."""
        patches = self.patch_embedding(images)  # (B, N, D)
        z = torch.cat([self.class_token.expand(len(patches), -1, -1), patches], dim=1)  # class token first: (B, N+1, D)
        z = self.dropout(z + self.position_embedding)
        for block in self.blocks:
            z = block(z)
        return self.final_norm(z[:, 0])  # LN(z_L^0); the other tokens' final states are not read

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> logits (B, n_classes)."""
        return self.head(self.encode(images))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ interop with Hugging Face
    @classmethod
    def from_hf(cls, model_or_path) -> ViT:
        """Our ViT with the weights of a Hugging Face ViTForImageClassification (an instance, or a
        save_pretrained folder)."""
        hf = interop.hf_model("ViTForImageClassification", model_or_path)
        c = hf.config
        if (c.hidden_act != "gelu" or not c.qkv_bias or not isinstance(hf.classifier, nn.Linear)
                or not isinstance(c.image_size, int) or not isinstance(c.patch_size, int)
                or getattr(c, "head_dim", None) not in (None, c.hidden_size // c.num_attention_heads)):
            raise ValueError("only the paper's ViT converts: exact GELU, biased q/k/v, square images and patches, "
                             "a linear classifier")
        config = ViTConfig(image_size=c.image_size, patch_size=c.patch_size, in_channels=c.num_channels,
                           n_classes=c.num_labels, dim=c.hidden_size, depth=c.num_hidden_layers,
                           heads=c.num_attention_heads, mlp_dim=c.intermediate_size, dropout=c.hidden_dropout_prob,
                           attention_dropout=c.attention_probs_dropout_prob, layer_norm_eps=c.layer_norm_eps)
        weight = hf.get_parameter("vit.embeddings.cls_token")
        model = cls(config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(model, hf, hf_names(config.depth, legacy=uses_legacy_names(hf)), into_ours=True)
        return model.train(hf.training)

    def to_hf(self):
        """A Hugging Face ViTForImageClassification holding our weights."""
        transformers = interop.transformers()
        c = self.config
        hf_config = transformers.ViTConfig(
            image_size=c.image_size, patch_size=c.patch_size, num_channels=c.in_channels, num_labels=c.n_classes,
            hidden_size=c.dim, num_hidden_layers=c.depth, num_attention_heads=c.heads, intermediate_size=c.mlp_dim,
            hidden_act="gelu", hidden_dropout_prob=c.dropout, attention_probs_dropout_prob=c.attention_dropout,
            layer_norm_eps=c.layer_norm_eps, qkv_bias=True)
        weight = self.class_token
        hf = transformers.ViTForImageClassification(hf_config).to(device=weight.device, dtype=weight.dtype)
        interop.copy_weights(self, hf, hf_names(c.depth, legacy=uses_legacy_names(hf)), into_ours=False)
        return hf.train(self.training)


def hf_names(depth: int, legacy: bool = False) -> dict[str, str]:
    """Our parameter name -> Hugging Face ViTForImageClassification's. `legacy`: the names of
    transformers 4.x (vit.encoder.layer.N.attention.attention.query ...); 5.x renamed the layers."""
    names = {"class_token": "vit.embeddings.cls_token", "position_embedding": "vit.embeddings.position_embeddings",
             "final_norm.weight": "vit.layernorm.weight", "final_norm.bias": "vit.layernorm.bias",
             "head.weight": "classifier.weight", "head.bias": "classifier.bias"}
    per_block = {"attention_norm": "layernorm_before", "attention.query": "attention.q_proj",
                 "attention.key": "attention.k_proj", "attention.value": "attention.v_proj",
                 "attention.out": "attention.o_proj", "mlp_norm": "layernorm_after", "mlp.up": "mlp.fc1",
                 "mlp.down": "mlp.fc2"}
    if legacy:
        per_block |= {"attention.query": "attention.attention.query", "attention.key": "attention.attention.key",
                      "attention.value": "attention.attention.value", "attention.out": "attention.output.dense",
                      "mlp.up": "intermediate.dense", "mlp.down": "output.dense"}
    layers = "vit.encoder.layer" if legacy else "vit.layers"
    for kind in ("weight", "bias"):
        names[f"patch_embedding.projection.{kind}"] = f"vit.embeddings.patch_embeddings.projection.{kind}"
        for layer in range(depth):
            for ours, theirs in per_block.items():
                names[f"blocks.{layer}.{ours}.{kind}"] = f"{layers}.{layer}.{theirs}.{kind}"
    return names


def uses_legacy_names(hf) -> bool:
    """Whether a Hugging Face ViT names its layers as transformers 4.x did (vit.encoder.layer.N...)."""
    return not any(name.startswith("vit.layers.") for name, _ in hf.named_parameters())
