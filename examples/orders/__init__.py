"""The seed's Order domain: SQL fold and read model (orders.sql), Python aggregate (order.py), commands."""
