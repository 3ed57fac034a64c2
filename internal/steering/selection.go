package steering

import (
	"math"
	"sort"
	"time"

	"github.com/cespare/xxhash/v2"
)

// rendezvous ranks pops for a track by highest-random-weight hashing: each
// track lands on the POP with the highest hash(track, pop), so a region's POPs
// split its tracks between them (one big cache), and removing a POP moves
// only the tracks that were on it.
func rendezvous(track string, pops []*popState) []*popState {
	type scored struct {
		p *popState
		s uint64
	}
	sc := make([]scored, len(pops))
	for i, p := range pops {
		sc[i] = scored{p, xxhash.Sum64String(track + "\x00" + p.Name)}
	}
	sort.Slice(sc, func(i, j int) bool { return sc[i].s > sc[j].s })
	out := make([]*popState, len(sc))
	for i, s := range sc {
		out[i] = s.p
	}
	return out
}

// regionView is one POP region as seen from a listener region.
type regionView struct {
	name        string
	rttMS       float64 // configured latency plus the best measured RTT
	networkLoad float64 // mean network load of its eligible POPs
	pops        []*popState
}

// eligible reports whether p may receive listeners: healthy and not overloaded.
func eligible(p *popState) bool { return p.healthy.state && !p.overloaded.state }

// rankRegions applies the selection rule for listeners in region from:
// drop POPs that are down or above the load cut, take the three regions
// with the lowest RTT, order those by network load (then RTT).
//
// When every healthy POP is overloaded, the overloaded ones are used rather
// than refusing listeners (degraded service beats none); only when no POP is
// healthy is there nothing to offer.
func (s *Service) rankRegions(from string) []regionView {
	views := s.rankRegionsBy(from, eligible)
	if len(views) == 0 {
		views = s.rankRegionsBy(from, func(p *popState) bool { return p.healthy.state })
	}
	return views
}

func (s *Service) rankRegionsBy(from string, ok func(*popState) bool) []regionView {
	by := map[string]*regionView{}
	for _, p := range s.pops {
		if !ok(p) {
			continue
		}
		rv := by[p.Region]
		if rv == nil {
			rv = &regionView{name: p.Region, rttMS: math.Inf(1)}
			by[p.Region] = rv
		}
		rv.pops = append(rv.pops, p)
		if r := s.latency(from, p.Region) + p.srtt; r < rv.rttMS {
			rv.rttMS = r
		}
	}
	views := make([]regionView, 0, len(by))
	for _, rv := range by {
		for _, p := range rv.pops {
			rv.networkLoad += p.stats.NetworkLoad
		}
		rv.networkLoad /= float64(len(rv.pops))
		views = append(views, *rv)
	}
	sort.Slice(views, func(i, j int) bool {
		if views[i].rttMS != views[j].rttMS {
			return views[i].rttMS < views[j].rttMS
		}
		return views[i].name < views[j].name
	})
	if len(views) > s.cfg.NearestRegions {
		views = views[:s.cfg.NearestRegions]
	}
	sort.SliceStable(views, func(i, j int) bool { return views[i].networkLoad < views[j].networkLoad })
	return views
}

// latency is the configured one-way-ish latency between two regions in ms
// (the same region is 0; an unknown pair is the configured default).
func (s *Service) latency(a, b string) float64 {
	if a == b {
		return 0
	}
	if v, ok := s.cfg.Latency[a+">"+b]; ok {
		return v
	}
	if v, ok := s.cfg.Latency[b+">"+a]; ok {
		return v
	}
	return s.cfg.DefaultLatencyMS
}

// choice is the sticky decision for one listener region.
type choice struct {
	region     string
	since      time.Time
	challenger string
	wins       int
}

// decide updates the sticky region choice of every listener region. A
// listener region leaves its current POP region at once only when that region
// has no eligible POP (or fell out of the nearest three); otherwise a better
// region must win SwitchSamples consecutive rounds by at least SwitchMargin of
// network load, and the current choice must have been held for MinDwell.
func (s *Service) decide(now time.Time) {
	for _, from := range s.listenerRegions() {
		views := s.rankRegions(from)
		cur := s.choices[from]
		if len(views) == 0 {
			delete(s.choices, from)
			continue
		}
		best := views[0]
		var current *regionView
		for i := range views {
			if cur != nil && views[i].name == cur.region {
				current = &views[i]
			}
		}
		switch {
		case cur == nil || current == nil:
			if cur != nil {
				s.log.Info("steering: region unavailable, switching now", "listener_region", from, "from", cur.region, "to", best.name)
			}
			s.choices[from] = &choice{region: best.name, since: now}
		case best.name == cur.region:
			cur.challenger, cur.wins = "", 0
		case current.networkLoad-best.networkLoad >= s.cfg.SwitchMargin:
			if cur.challenger != best.name {
				cur.challenger, cur.wins = best.name, 0
			}
			cur.wins++
			if cur.wins >= s.cfg.SwitchSamples && now.Sub(cur.since) >= s.cfg.MinDwell {
				s.log.Info("steering: switching region", "listener_region", from, "from", cur.region, "to", best.name,
					"load_from", current.networkLoad, "load_to", best.networkLoad)
				s.choices[from] = &choice{region: best.name, since: now}
			}
		default:
			cur.challenger, cur.wins = "", 0
		}
	}
}

func (s *Service) listenerRegions() []string {
	seen := map[string]bool{}
	var out []string
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, p := range s.pops {
		add(p.Region)
	}
	for _, r := range s.cfg.ListenerRegions {
		add(r)
	}
	add(s.cfg.DefaultRegion)
	return out
}

// pick returns the POPs for a track requested from listener region from: the
// chosen POP first (sticky region, rendezvous within it), then the track's
// POP in each other near region, then second choices, up to max.
func (s *Service) pick(from, track string, max int) []*popState {
	views := s.rankRegions(from)
	if len(views) == 0 {
		return nil
	}
	if c := s.choices[from]; c != nil {
		for i, v := range views {
			if v.name == c.region {
				views[0], views[i] = views[i], views[0]
				break
			}
		}
	}
	ranked := make([][]*popState, len(views))
	for i, v := range views {
		ranked[i] = rendezvous(track, v.pops)
	}
	var out []*popState
	for depth := 0; len(out) < max; depth++ {
		added := false
		for _, r := range ranked {
			if depth < len(r) && len(out) < max {
				out = append(out, r[depth])
				added = true
			}
		}
		if !added {
			break
		}
	}
	return out
}

// Owners ranks pops for track the way steering places tracks inside a region
// (rendezvous hashing on the POP name), so pushing a track to Owners(...)[0]
// of a region warms the POP that listeners will be sent to.
func Owners(track string, pops []POP) []POP {
	st := make([]*popState, len(pops))
	for i := range pops {
		st[i] = &popState{POP: pops[i]}
	}
	out := make([]POP, len(pops))
	for i, p := range rendezvous(track, st) {
		out[i] = p.POP
	}
	return out
}
