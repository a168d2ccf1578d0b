"""The static HTML book: `milestones book` (see `build.build_book`)."""

from milestones.book.build import Built, build_book

__all__ = ["Built", "build_book"]
