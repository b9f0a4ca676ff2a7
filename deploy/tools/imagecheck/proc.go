package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStatus is what the kernel says of the container's main process, read
// from /proc/<pid>/status and /proc/<pid>/mountinfo on the host: the engine's
// own report would only repeat the flags it was given.
type procStatus struct {
	uid, gid   []string // real, effective, saved, filesystem
	capEff     uint64
	capPrm     uint64
	noNewPrivs bool
	seccomp    string // 2: a filter, as Kubernetes' RuntimeDefault
	rootRO     bool
}

func readProc(pid int) (procStatus, error) {
	var ps procStatus
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return ps, err
	}
	// Ids in status are as this process sees them; a rootless engine maps
	// the container's through a user namespace.
	uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		return ps, err
	}
	gidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/gid_map", pid))
	if err != nil {
		return ps, err
	}
	ps, err = parseProc(string(status), string(mounts))
	if err != nil {
		return ps, err
	}
	if ps.uid, err = mapIDs(ps.uid, string(uidMap)); err != nil {
		return ps, fmt.Errorf("uid_map: %w", err)
	}
	if ps.gid, err = mapIDs(ps.gid, string(gidMap)); err != nil {
		return ps, fmt.Errorf("gid_map: %w", err)
	}
	return ps, nil
}

// mapIDs turns ids seen from outside a user namespace into the ids inside
// it, by the namespace's map ("inside outside count" per line).
func mapIDs(ids []string, idMap string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("id %q", id)
		}
		out[i] = "unmapped"
		for _, line := range strings.Split(idMap, "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			inside, err1 := strconv.ParseUint(f[0], 10, 32)
			outside, err2 := strconv.ParseUint(f[1], 10, 32)
			count, err3 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, fmt.Errorf("line %q", line)
			}
			if n >= outside && n-outside < count {
				out[i] = strconv.FormatUint(inside+(n-outside), 10)
				break
			}
		}
	}
	return out, nil
}

func parseProc(status, mountinfo string) (procStatus, error) {
	var ps procStatus
	var errs []error
	seen := map[string]bool{}
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		seen[k] = true
		switch k {
		case "Uid":
			ps.uid = strings.Fields(v)
		case "Gid":
			ps.gid = strings.Fields(v)
		case "Seccomp":
			ps.seccomp = v
		case "CapEff", "CapPrm":
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q", k, v))
			}
			if k == "CapEff" {
				ps.capEff = n
			} else {
				ps.capPrm = n
			}
		case "NoNewPrivs":
			ps.noNewPrivs = v == "1"
		}
	}
	for _, k := range []string{"Uid", "Gid", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp"} {
		if !seen[k] {
			errs = append(errs, fmt.Errorf("status has no %s line", k))
		}
	}
	// mountinfo: ID parent major:minor root mountpoint options ... - fstype source superoptions
	rootSeen := false
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[4] != "/" {
			continue
		}
		rootSeen = true // the last mount on / is the one in effect
		ps.rootRO = false
		for _, o := range strings.Split(f[5], ",") {
			if o == "ro" {
				ps.rootRO = true
			}
		}
	}
	if !rootSeen {
		errs = append(errs, errors.New("mountinfo has no mount on /"))
	}
	return ps, errors.Join(errs...)
}

// check wants the chart's pod: user and group 65532 in every slot, no
// capabilities, no privilege escalation, a seccomp filter, a read-only root.
func (ps procStatus) check() error {
	var errs []error
	for _, ids := range []struct {
		name string
		v    []string
	}{{"Uid", ps.uid}, {"Gid", ps.gid}} {
		if len(ids.v) != 4 || strings.Count(strings.Join(ids.v, " "), "65532") != 4 {
			errs = append(errs, fmt.Errorf("%s = %q, want 65532 in all four", ids.name, ids.v))
		}
	}
	if ps.capEff != 0 || ps.capPrm != 0 {
		errs = append(errs, fmt.Errorf("CapEff, CapPrm = %016x, %016x, want none", ps.capEff, ps.capPrm))
	}
	if !ps.noNewPrivs {
		errs = append(errs, errors.New("NoNewPrivs = 0, want 1"))
	}
	if ps.seccomp != "2" {
		errs = append(errs, fmt.Errorf("Seccomp = %q, want 2 (a filter, as RuntimeDefault)", ps.seccomp))
	}
	if !ps.rootRO {
		errs = append(errs, errors.New("/ is mounted read-write, want read-only"))
	}
	return errors.Join(errs...)
}
