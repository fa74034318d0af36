package engine

import (
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/heraldpush/herald/console"
)

// serveConsole is GET /console/ and /console/{file}: the web console's
// embedded files, with its security headers (package console).
func (s *Server) serveConsole(r *request) *apiError {
	name := r.id
	if name == "" {
		// /console without its slash: the page's relative links need it.
		if !strings.HasSuffix(string(r.ctx.URI().PathOriginal()), "/") {
			r.ctx.Redirect("/console/", 308)
			return nil
		}
		name = "index.html"
	}
	b, err := fs.ReadFile(console.Files(), name)
	if err != nil {
		return errorf(404, codeNotFound, "no console file %q", name)
	}
	console.SetHeaders(r.ctx.Response.Header.Set)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	r.ctx.SetStatusCode(200)
	r.ctx.SetContentType(ct)
	r.ctx.SetBody(b)
	return nil
}
