package engine

import (
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The Prometheus series the stats routes read. They are the actors' and
// the ingress's own counters: the JSON is a view of /metrics for the
// console, so the two never disagree.
const (
	seriesPushes      = "herald_pushes_total"
	seriesCircuitOpen = "herald_certificate_circuit_open"
	seriesQueued      = "herald_tenant_queue_depth"
	seriesInflight    = "herald_apns_inflight"
	seriesUnsettled   = "herald_log_unsettled_messages"
	seriesSettled     = "herald_messages_settled_total"
)

// appStatsView is one app's counters. They only grow (circuits_open
// aside): a client takes the difference of two answers over the
// difference of their times for a rate.
type appStatsView struct {
	AppID        string `json:"app_id"`
	PushesSent   uint64 `json:"pushes_sent"`
	PushesFailed uint64 `json:"pushes_failed"`
	// CircuitsOpen counts the app's credentials APNs currently refuses.
	CircuitsOpen int `json:"circuits_open"`
	// QueueDepth is the app's pushes waiting in its tenant queues.
	QueueDepth uint64 `json:"queue_depth"`
}

// statsView is GET /v1/stats: the engine's backlog and every app's
// counters.
type statsView struct {
	Time string `json:"time"`
	// Unsettled is the durable log's backlog: accepted messages not yet
	// settled.
	Unsettled uint64 `json:"unsettled"`
	// QueueDepth is pushes waiting in tenant queues; Inflight, pushes sent
	// to APNs and not yet answered.
	QueueDepth      uint64         `json:"queue_depth"`
	Inflight        uint64         `json:"inflight"`
	MessagesSettled uint64         `json:"messages_settled"`
	Apps            []appStatsView `json:"apps"`
}

// appStatsResponse is GET /v1/apps/{app}/stats: that app's counters
// only, since an api_key must not learn about other tenants' traffic.
type appStatsResponse struct {
	Time string `json:"time"`
	appStatsView
}

// gatherStats reads the stats series from the Prometheus gatherer. The
// console polls it about once a second; a gather costs well under a
// millisecond, so nothing is cached.
func (s *Server) gatherStats() (statsView, error) {
	v := statsView{Time: time.Now().UTC().Format(time.RFC3339Nano)}
	families, err := s.opts.Gatherer.Gather()
	if err != nil && len(families) == 0 {
		return v, err
	}
	byApp := map[string]*appStatsView{}
	for _, a := range s.auth.apps() {
		byApp[a.ID] = &appStatsView{AppID: a.ID}
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case seriesQueued:
				depth := uint64(m.GetGauge().GetValue())
				v.QueueDepth += depth
				if a := byApp[labelValue(m, "app")]; a != nil {
					a.QueueDepth += depth
				}
			case seriesInflight:
				v.Inflight = uint64(m.GetGauge().GetValue())
			case seriesUnsettled:
				v.Unsettled = uint64(m.GetGauge().GetValue())
			case seriesSettled:
				v.MessagesSettled = uint64(m.GetCounter().GetValue())
			case seriesPushes, seriesCircuitOpen:
				outcome := labelValue(m, "outcome")
				a := byApp[labelValue(m, "app")]
				if a == nil {
					continue // an app deleted since, or not an app label
				}
				if f.GetName() == seriesCircuitOpen {
					if m.GetGauge().GetValue() > 0 {
						a.CircuitsOpen++
					}
				} else if outcome == "sent" {
					a.PushesSent += uint64(m.GetCounter().GetValue())
				} else {
					a.PushesFailed += uint64(m.GetCounter().GetValue())
				}
			}
		}
	}
	v.Apps = make([]appStatsView, 0, len(byApp))
	for _, a := range byApp {
		v.Apps = append(v.Apps, *a)
	}
	sort.Slice(v.Apps, func(i, j int) bool { return v.Apps[i].AppID < v.Apps[j].AppID })
	return v, nil
}

// stats is GET /v1/stats (admin).
func (s *Server) stats(r *request) *apiError {
	v, err := s.gatherStats()
	if err != nil {
		s.logger.Error("gather stats", logKeyErr, err)
		return errorf(500, codeInternal, "could not gather the metrics (logged)")
	}
	writeJSON(r.ctx, 200, &v)
	return nil
}

// appStats is GET /v1/apps/{app}/stats (the app's key or admin).
func (s *Server) appStats(r *request) *apiError {
	v, err := s.gatherStats()
	if err != nil {
		s.logger.Error("gather stats", logKeyApp, r.app, logKeyErr, err)
		return errorf(500, codeInternal, "could not gather the metrics (logged)")
	}
	out := appStatsResponse{Time: v.Time, appStatsView: appStatsView{AppID: r.app}}
	for _, a := range v.Apps {
		if a.AppID == r.app {
			out.appStatsView = a
		}
	}
	writeJSON(r.ctx, 200, &out)
	return nil
}

// labelValue is the value of m's label name, "" when it has none.
func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
