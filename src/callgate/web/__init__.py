"""Server-rendered pages: login, sessions, CSRF and security headers."""
