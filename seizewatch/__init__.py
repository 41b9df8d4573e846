"""The composition root: settings, the `seizewatch` command, local services and the demo."""
