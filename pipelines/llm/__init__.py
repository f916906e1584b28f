"""Language model providers behind one streaming protocol, and the fallback chain over them."""
