package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/lianmai/relay/loadtest"
	"github.com/lianmai/relay/loadtest/report"
)

// runGroup is the reports of one scenario.
type runGroup struct {
	sc   loadtest.Scenario
	reps []*report.Report
}

// listencost prints what one listener costs the relay, on the mix and on
// tracks (issue 12): the relay's CPU in a scenario with listeners minus
// its CPU in a baseline scenario of the same rooms and publishers without
// audience, divided by the listeners. Relay CPU cannot be split between
// listeners inside one run, so the comparison takes separate runs of the
// same room shape (make bench runs each on a fresh relay); what the mix
// costs once per room (the mixer) is part of the mix listeners' share.
func listencost(args []string, out, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest listencost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", "", "the baseline scenario's name (default: the one without audience)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadtest listencost [-base NAME] REPORT.json...\n\n"+
			"Relay CPU per listener: each scenario's median relay CPU minus the baseline's (the same rooms and\n"+
			"publishers, no audience), divided by its listeners; mix against tracks. docs/loadtest.md has the details.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("listencost: name the JSON reports (-json) of a baseline scenario without audience and of the scenarios to compare")
	}
	groups, order, err := loadGroups(fs.Args())
	if err != nil {
		return err
	}
	baseName := *base
	if baseName == "" {
		for _, name := range order {
			if groups[name].sc.Audience == 0 {
				if baseName != "" {
					return fmt.Errorf("listencost: two scenarios without audience (%s, %s): choose the baseline with -base", baseName, name)
				}
				baseName = name
			}
		}
	}
	b, ok := groups[baseName]
	if !ok || baseName == "" {
		return fmt.Errorf("listencost: no baseline among the reports: give the runs of a scenario without audience (e.g. loadtest/scenarios/pubs9.json) or name one with -base")
	}
	if b.sc.Audience != 0 {
		return fmt.Errorf("listencost: the baseline %s has audience (%d per room); its publishers alone must be the baseline", baseName, b.sc.Audience)
	}
	baseCPU, err := relayCPUs(baseName, b.reps)
	if err != nil {
		return err
	}
	baseMed, basePkts := median(sortedCopy(baseCPU)), median(sortedCopy(figures(b.reps, func(r *report.Report) float64 { return r.Relay.PacketsOutPerSec })))
	fmt.Fprintf(out, "relay cost per listener over %s (%d room(s) x (%d host + %d guest), no audience; %d run(s)): relay CPU %s%% of a core, %s packets out/s\n",
		baseName, b.sc.Rooms, b.sc.Hosts, b.sc.Guests, len(b.reps), num(baseMed), num(basePkts))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tlisten\tlisteners\truns\trelay CPU %\tper listener: CPU % of a core\t(min\tmax)\tpackets out/s\t")
	perListener := map[string][2]float64{} // by listen: CPU, packets
	var notes []string
	for _, name := range order {
		g := groups[name]
		if name == baseName {
			continue
		}
		sc := g.sc
		if sc.Rooms != b.sc.Rooms || sc.Hosts != b.sc.Hosts || sc.Guests != b.sc.Guests {
			notes = append(notes, fmt.Sprintf("%s: not compared, its rooms are not the baseline's (%d x (%d host + %d guest))", name, sc.Rooms, sc.Hosts, sc.Guests))
			continue
		}
		mix := sc.MixListeners()
		listen := loadtest.ListenTracks
		switch {
		case sc.Audience == 0:
			notes = append(notes, fmt.Sprintf("%s: not compared, no audience", name))
			continue
		case mix == sc.Audience:
			listen = loadtest.ListenMix
		case mix > 0:
			notes = append(notes, fmt.Sprintf("%s: not compared, its audience is split between mix and tracks and one run's relay CPU cannot be told apart by group", name))
			continue
		}
		cpus, err := relayCPUs(name, g.reps)
		if err != nil {
			return err
		}
		n := float64(sc.Rooms * sc.Audience)
		per := make([]float64, len(cpus))
		for i, c := range cpus {
			per[i] = (c - baseMed) / n
		}
		slices.Sort(per)
		pkts := (median(sortedCopy(figures(g.reps, func(r *report.Report) float64 { return r.Relay.PacketsOutPerSec }))) - basePkts) / n
		cpu := median(sortedCopy(cpus))
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, listen, int(n), len(g.reps), num(cpu), num((cpu-baseMed)/n), num(per[0]), num(per[len(per)-1]), num(pkts))
		if _, dup := perListener[listen]; dup {
			notes = append(notes, fmt.Sprintf("%s: a second %s scenario; the ratio below uses the first", name, listen))
		} else {
			perListener[listen] = [2]float64{(cpu - baseMed) / n, pkts}
		}
		if listen == loadtest.ListenMix && slices.ContainsFunc(g.reps, func(r *report.Report) bool { return r.Audio.Mix.Receivers == 0 }) {
			notes = append(notes, fmt.Sprintf("%s: in some run no listener received the mix (did the relay ignore listen \"mix\"?): its figures are not the mix's", name))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	m, okM := perListener[loadtest.ListenMix]
	t, okT := perListener[loadtest.ListenTracks]
	if okM && okT && m[0] > 0 && m[1] > 0 {
		fmt.Fprintf(out, "a listener on tracks costs the relay %.2fx the CPU of a listener on the mix (%.2fx the packets)\n", t[0]/m[0], t[1]/m[1])
	} else if okM && okT {
		notes = append(notes, "no ratio: the mix listeners' share is not above the baseline (too few listeners, or the runs too noisy)")
	}
	for _, n := range notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	return nil
}

// loadGroups reads the reports and groups them by scenario name, in the
// order the names first appear.
func loadGroups(paths []string) (map[string]*runGroup, []string, error) {
	groups := map[string]*runGroup{}
	var order []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("listencost: %w", err)
		}
		var r report.Report
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, nil, fmt.Errorf("listencost: %s is not a loadtest JSON report: %w", p, err)
		}
		sc, err := loadtest.ScenarioOf(&r)
		if err != nil {
			return nil, nil, fmt.Errorf("listencost: %s: %w", p, err)
		}
		g := groups[sc.Name]
		if g == nil {
			g = &runGroup{sc: sc}
			groups[sc.Name] = g
			order = append(order, sc.Name)
		}
		g.reps = append(g.reps, &r)
	}
	return groups, order, nil
}

// relayCPUs returns each run's relay CPU, % of a core; an error if a run
// has none.
func relayCPUs(name string, reps []*report.Report) ([]float64, error) {
	for _, r := range reps {
		if r.Relay.CPUSource == "" {
			return nil, fmt.Errorf("listencost: a run of %s has no relay CPU (no /metrics and no -relay-pid): nothing to compare", name)
		}
	}
	return figures(reps, func(r *report.Report) float64 { return r.Relay.CPUPct }), nil
}

func figures(reps []*report.Report, get func(*report.Report) float64) []float64 {
	v := make([]float64, len(reps))
	for i, r := range reps {
		v[i] = get(r)
	}
	return v
}

func sortedCopy(v []float64) []float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}
