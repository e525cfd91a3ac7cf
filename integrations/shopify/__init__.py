"""The Shopify integration."""
