package suite

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrReplay means a checkpoint JSON-lines file could not be replayed.
var ErrReplay = errors.New("suite: bad checkpoint records")

// Replay is what ReplayCheckpoint read besides the rows.
type Replay struct {
	Meta    Meta
	Limits  Limits
	Elapsed time.Duration // from the end record; 0 when absent
}

// ReplayCheckpoint rebuilds the table from the JSON lines a checkpoint run
// wrote (its meta, limits, checkpoint and end records; other kinds are
// skipped), scenarios in the order they were first measured. It lets the
// table be re-rendered after a change to the harness without measuring again.
func ReplayCheckpoint(r io.Reader) (Replay, []CkRow, error) {
	var (
		elapsed time.Duration
		meta    Meta
		lim     Limits
		order   []CkScenario
		recs    = map[CkScenario][]CkRecord{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var k struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(line, &k); err != nil {
			return Replay{Meta: meta, Limits: lim}, nil, fmt.Errorf("%w: line %d: %v", ErrReplay, n, err)
		}
		var err error
		switch k.Kind {
		case "meta":
			err = json.Unmarshal(line, &meta)
		case "limits":
			err = json.Unmarshal(line, &lim)
		case "end":
			var e struct {
				LoadAfter string  `json:"loadavg_after"`
				Elapsed   float64 `json:"elapsed_s"`
			}
			err = json.Unmarshal(line, &e)
			meta.LoadAfter, elapsed = e.LoadAfter, time.Duration(e.Elapsed*float64(time.Second))
		case "checkpoint":
			var c CkRecord
			if err = json.Unmarshal(line, &c); err != nil {
				break
			}
			s, perr := ParseScenarios(fmt.Sprintf("%dM", c.MemMiB), c.Scenario)
			if perr != nil {
				return Replay{Meta: meta, Limits: lim}, nil, fmt.Errorf("%w: line %d: %v", ErrReplay, n, perr)
			}
			if _, seen := recs[s[0]]; !seen {
				order = append(order, s[0])
			}
			recs[s[0]] = append(recs[s[0]], c)
		}
		if err != nil {
			return Replay{Meta: meta, Limits: lim}, nil, fmt.Errorf("%w: line %d: %v", ErrReplay, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Replay{Meta: meta, Limits: lim}, nil, fmt.Errorf("%w: %v", ErrReplay, err)
	}
	if len(order) == 0 {
		return Replay{Meta: meta, Limits: lim}, nil, fmt.Errorf("%w: no checkpoint records", ErrReplay)
	}
	var rows []CkRow
	for _, s := range order {
		rows = append(rows, CkRows(s, recs[s], lim)...)
	}
	return Replay{meta, lim, elapsed}, rows, nil
}
