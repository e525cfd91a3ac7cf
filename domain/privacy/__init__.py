"""Privacy-law requests from the malls (APPI, Shopify's mandatory topics): answer, erase, purge."""
