"""Which feeds a corpus makes: one per topic, per provider and for everything, and their monthly archives."""
