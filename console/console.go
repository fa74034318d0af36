package console

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files returns the console's files by name: index.html, app.js,
// style.css and favicon.svg.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is embedded above: cannot happen
	}
	return sub
}

// ContentSecurityPolicy allows the console's own files and API calls to
// its own origin, nothing inline, and no framing.
const ContentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'none'"

// SetHeaders writes the security headers of a console answer with set.
func SetHeaders(set func(key, value string)) {
	set("Content-Security-Policy", ContentSecurityPolicy)
	set("X-Content-Type-Options", "nosniff")
	set("Referrer-Policy", "no-referrer")
	set("X-Frame-Options", "DENY")
	// The files change with the binary; revalidating is cheap on loopback
	// and avoids a stale app.js after an upgrade.
	set("Cache-Control", "no-cache")
}
