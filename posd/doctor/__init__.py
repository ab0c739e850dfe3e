"""`posd doctor`: one line per check (ok / warn / fail) with the fix; see `checks`."""
