"""Who is on duty, who gets told, and telling them."""
