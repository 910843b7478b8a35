"""Legal quick-reference: laws, their articles, our plain-language notes, search and import."""
