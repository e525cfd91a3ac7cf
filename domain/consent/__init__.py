"""Per-channel consent records with their source and proof (特定電子メール法, APPI)."""
