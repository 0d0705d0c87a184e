package llmux

import "encoding/json"

// Groupings accepted by Gateway.Spend.
const (
	GroupByTotal    = "" // one total row
	GroupByKey      = "key"
	GroupByWorkflow = "workflow"
	GroupByTask     = "task"
	GroupByModel    = "model"
	GroupByProvider = "provider"
	GroupByTeam     = "team"  // the gateway key's team
	GroupByAlias    = "alias" // the alias the call was routed to
)

// SpendReport is what the gateway has handled since it was opened.
type SpendReport struct {
	GroupBy string          `json:"group_by"`
	Rows    []SpendRow      `json:"rows"`
	Total   SpendRow        `json:"total"`
	Raw     json.RawMessage `json:"-"` // the report JSON, verbatim
}

// SpendRow is one group of a SpendReport.
type SpendRow struct {
	Group            string  `json:"group"` // the key id, workflow, task, model, provider, team or alias; "(none)" if unset; "" in Total
	Calls            int64   `json:"calls"`
	Errors           int64   `json:"errors"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	CachedTokens     int64   `json:"cached_tokens"`      // cache reads, part of PromptTokens
	CacheWriteTokens int64   `json:"cache_write_tokens"` // cache writes, part of PromptTokens
	ReasoningTokens  int64   `json:"reasoning_tokens"`   // part of CompletionTokens
	CostUSD          float64 `json:"cost_usd"`           // sum over the calls whose price is known
	CostNUSD         *int64  `json:"cost_nusd"`          // the same in nano-dollars, exact; nil when no call was priced
	PricedCalls      int64   `json:"priced_calls"`
	UnpricedCalls    int64   `json:"unpriced_calls"`  // calls whose price is unknown
	EstimatedCalls   int64   `json:"estimated_calls"` // calls whose cost rests on estimated tokens
}

// Row returns the row of the named group, or nil.
func (r *SpendReport) Row(group string) *SpendRow {
	for i := range r.Rows {
		if r.Rows[i].Group == group {
			return &r.Rows[i]
		}
	}
	return nil
}

// Spend reports the calls, errors, tokens and cost since the gateway was
// opened, grouped by one of the GroupBy constants.
func (g *Gateway) Spend(groupBy string) (*SpendReport, error) {
	if hasNUL(groupBy) {
		return nil, argError("group_by contains a NUL byte")
	}
	ptr, err := g.acquire()
	if err != nil {
		return nil, err
	}
	raw, st := cSpend(ptr, groupBy)
	g.release()
	if st != StatusOK {
		msg := "spend report: " + st.String()
		if st == StatusInvalidArgument {
			msg = "spend report: group_by " + quote(groupBy) + " is not one of: key, workflow, task, model, provider, team, alias (or \"\" for the total)"
		}
		return nil, &Error{Code: st, Message: msg}
	}
	return decodeSpend(raw)
}

func decodeSpend(raw []byte) (*SpendReport, error) {
	rep := &SpendReport{}
	if err := json.Unmarshal(raw, rep); err != nil {
		return nil, &Error{Code: StatusInternal, Body: raw,
			Message: "llmux-go: cannot decode the spend report: " + err.Error()}
	}
	rep.Raw = raw
	return rep, nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
