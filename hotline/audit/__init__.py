"""Who did what, when and from where: the access log administrators search."""
