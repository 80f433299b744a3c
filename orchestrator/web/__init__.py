"""The pages' static files (HTML, CSS, JavaScript), served as they are: no build step, no CDN."""
