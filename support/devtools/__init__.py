"""What only CI and maintainers run; no notebook imports these.

- `nbrun`: execute notebooks with parameters (papermill injects them, nbclient runs);
- `nbnormalize`: keep committed notebooks diff-friendly (`make test` fails if it would change one);
- `sitecheck`: static checks of the built site (links, anchors, nothing loaded from outside).
"""
