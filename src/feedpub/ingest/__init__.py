"""Article files to a :class:`~feedpub.model.Corpus`: front matter, validation, scanning, assembly, loading."""
