"""`posd run`: the daemon composing journal, keys, devices, delivery and the register's API."""
