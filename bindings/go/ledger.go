package llmux

import "time"

// Export formats (docs/ledger.md).
const (
	ExportJSONL = "jsonl" // one JSON object a line
	ExportCSV   = "csv"   // a header row, then one row a record (RFC 4180)
)

// utc is a period bound as llmux reads it; the zero time leaves the side open.
func utc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// SpendPeriod is Spend over the ledger journal's records with
// since <= time < until (a zero time leaves that side open); it needs
// "ledger": {"journal": ...} in the config unless both are zero.
func (g *Gateway) SpendPeriod(groupBy string, since, until time.Time) (*SpendReport, error) {
	if since.IsZero() && until.IsZero() {
		return g.Spend(groupBy)
	}
	if hasNUL(groupBy) {
		return nil, argError("group_by contains a NUL byte")
	}
	ptr, err := g.acquire()
	if err != nil {
		return nil, err
	}
	raw, st := cLedgerText(ptr, false, groupBy, utc(since), utc(until))
	g.release()
	if st != StatusOK {
		return nil, &Error{Code: st, Message: "spend report over a period: " + st.String()}
	}
	return decodeSpend(raw)
}

// Export returns the ledger journal's records with since <= time < until
// (zero times leave a side open) as JSON lines (ExportJSONL) or CSV
// (ExportCSV). Without a journal in the config it fails with
// StatusUnsupported.
func (g *Gateway) Export(format string, since, until time.Time) ([]byte, error) {
	if hasNUL(format) {
		return nil, argError("format contains a NUL byte")
	}
	ptr, err := g.acquire()
	if err != nil {
		return nil, err
	}
	text, st := cLedgerText(ptr, true, format, utc(since), utc(until))
	g.release()
	if st != StatusOK {
		return nil, &Error{Code: st, Message: "ledger export " + quote(format) + ": " + st.String()}
	}
	return text, nil
}

// CompactLedger rewrites the ledger journal as daily summary records now
// (it also happens by itself past ledger.compact_bytes).
func (g *Gateway) CompactLedger() error {
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	st := cCompact(ptr)
	g.release()
	if st != StatusOK {
		return &Error{Code: st, Message: "ledger compaction: " + st.String()}
	}
	return nil
}
