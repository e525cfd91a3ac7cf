"""Products, orders and order lines from every mall, in one model."""
