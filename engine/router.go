package engine

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// route names label metrics; they never contain ids.
const (
	routeApps         = "apps"
	routeRotate       = "keys_rotate"
	routeCerts        = "certificates"
	routeCert         = "certificate"
	routeAPNS         = "user_apns"
	routePresence     = "user_presence"
	routeProfile      = "user_profile"
	routeUser         = "user"
	routeGroup        = "group"
	routeMember       = "group_member"
	routeMessages     = "messages"
	routeMessageBatch = "messages_batch"
	routeMessage      = "message"
	routeHealth       = "healthz"
	routeMetrics      = "metrics"
	routeUnknown      = "unknown"
)

// request is one routed request: the path's ids, already unescaped.
type request struct {
	ctx   *fasthttp.RequestCtx
	app   string
	user  string
	group string
	id    string // business_id or message id
}

// maxIDLen bounds app, user and group ids.
const maxIDLen = 128

// validID reports whether s may be an app, user or group id: 1–128 bytes
// of UTF-8 without control characters (0x00 separates ids in storage keys).
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	route, err := s.serve(ctx)
	if err != nil {
		writeError(ctx, err)
	}
	s.metrics.observe(route, ctx.Response.StatusCode(), time.Since(start))
}

// serve routes one request and returns its route name and, on failure, the
// error to answer with.
func (s *Server) serve(ctx *fasthttp.RequestCtx) (string, *apiError) {
	path := string(ctx.URI().PathOriginal())
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	method := string(ctx.Method())
	switch path {
	case "/healthz":
		return routeHealth, s.only(method, "GET", func() *apiError { return s.healthz(ctx) })
	case "/metrics":
		return routeMetrics, s.only(method, "GET", func() *apiError { return s.serveMetrics(ctx) })
	}
	if s.draining.Load() {
		return routeUnknown, &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
	}
	if path == "/v1/apps" {
		return routeApps, s.only(method, "POST", func() *apiError { return s.createApp(ctx) })
	}
	const prefix = "/v1/apps/"
	if !strings.HasPrefix(path, prefix) {
		return routeUnknown, errorf(404, codeNotFound, "no such endpoint")
	}
	raw := strings.Split(strings.TrimSuffix(path[len(prefix):], "/"), "/")
	seg := make([]string, len(raw))
	for i, r := range raw {
		v, err := url.PathUnescape(r)
		if err != nil {
			return routeUnknown, errorf(400, codeNotFound, "bad escape in path")
		}
		seg[i] = v
	}
	r := &request{ctx: ctx, app: seg[0]}
	route, handler := s.match(r, seg, method)
	if handler == nil {
		return route, errorf(404, codeNotFound, "no such endpoint")
	}
	if !validID(r.app) {
		return route, errorf(400, codeInvalidAppID, "app_id must be 1-%d bytes of printable UTF-8", maxIDLen)
	}
	if err := s.auth.requireApp(ctx, r.app); err != nil {
		return route, err
	}
	if r.user != "" || route == routeAPNS || route == routePresence || route == routeProfile || route == routeUser || route == routeMember {
		if !validID(r.user) {
			return route, errorf(400, codeInvalidUserID, "user_id must be 1-%d bytes of printable UTF-8", maxIDLen)
		}
	}
	if route == routeGroup || route == routeMember {
		if !validID(r.group) {
			return route, errorf(400, codeInvalidGroupID, "group_id must be 1-%d bytes of printable UTF-8", maxIDLen)
		}
	}
	return route, handler(r)
}

// only runs h for the one allowed method, else answers 405.
func (s *Server) only(method, allowed string, h func() *apiError) *apiError {
	if method != allowed {
		return errorf(405, codeMethodNotAllowed, "use %s", allowed)
	}
	return h()
}

type handlerFunc func(*request) *apiError

// match picks the handler for /v1/apps/{app}/... segments; a nil handler
// with a route name means the path exists but not for this method.
func (s *Server) match(r *request, seg []string, method string) (string, handlerFunc) {
	methods := func(route string, byMethod map[string]handlerFunc) (string, handlerFunc) {
		if h, ok := byMethod[method]; ok {
			return route, h
		}
		return route, func(*request) *apiError {
			allowed := make([]string, 0, len(byMethod))
			for m := range byMethod {
				allowed = append(allowed, m)
			}
			return errorf(405, codeMethodNotAllowed, "use %s", strings.Join(allowed, " or "))
		}
	}
	switch {
	case len(seg) == 2 && seg[1] == "keys:rotate":
		return methods(routeRotate, map[string]handlerFunc{"POST": s.rotateKey})
	case len(seg) == 2 && seg[1] == "certificates":
		return methods(routeCerts, map[string]handlerFunc{"POST": s.uploadCertificate, "GET": s.listCertificates})
	case len(seg) == 3 && seg[1] == "certificates":
		r.id = seg[2]
		return methods(routeCert, map[string]handlerFunc{"DELETE": s.deleteCertificate})
	case len(seg) == 3 && seg[1] == "users":
		r.user = seg[2]
		return methods(routeUser, map[string]handlerFunc{"GET": s.getUser})
	case len(seg) == 4 && seg[1] == "users":
		r.user = seg[2]
		switch seg[3] {
		case "apns":
			return methods(routeAPNS, map[string]handlerFunc{"PUT": s.setAPNS})
		case "presence":
			return methods(routePresence, map[string]handlerFunc{"PUT": s.setPresence})
		case "profile":
			return methods(routeProfile, map[string]handlerFunc{"PUT": s.setProfile})
		}
	case len(seg) == 3 && seg[1] == "groups":
		r.group = seg[2]
		return methods(routeGroup, map[string]handlerFunc{"PUT": s.putGroup})
	case len(seg) == 5 && seg[1] == "groups" && seg[3] == "members":
		r.group, r.user = seg[2], seg[4]
		return methods(routeMember, map[string]handlerFunc{"PUT": s.putMember, "DELETE": s.deleteMember})
	case len(seg) == 2 && seg[1] == "messages":
		return methods(routeMessages, map[string]handlerFunc{"POST": s.postMessage})
	case len(seg) == 2 && seg[1] == "messages:batch":
		return methods(routeMessageBatch, map[string]handlerFunc{"POST": s.postMessageBatch})
	case len(seg) == 3 && seg[1] == "messages":
		r.id = seg[2]
		return methods(routeMessage, map[string]handlerFunc{"GET": s.getMessage})
	}
	return routeUnknown, nil
}
