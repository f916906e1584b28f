"""Local stand-ins for hosted APIs that speak their exact wire formats."""
