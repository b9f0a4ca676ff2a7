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
	rootRO     bool
	groups     string
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
	return parseProc(string(status), string(mounts))
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
		case "Groups":
			ps.groups = v
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
	for _, k := range []string{"Uid", "Gid", "CapEff", "CapPrm", "NoNewPrivs"} {
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
// capabilities, no privilege escalation, a read-only root.
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
	if !ps.rootRO {
		errs = append(errs, errors.New("/ is mounted read-write, want read-only"))
	}
	return errors.Join(errs...)
}
