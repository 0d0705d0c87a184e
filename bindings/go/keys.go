package llmux

import (
	"encoding/json"
	"runtime/cgo"
	"sync/atomic"
)

// Gateway keys, budgets, rate limits and alerts (docs/keys-and-budgets.md).

// Budget is one budget of a key, a team or the gateway.
type Budget struct {
	USD     float64   `json:"usd"`
	Period  string    `json:"period"`             // "day", "week", "month" (UTC calendar) or "total"
	AlertAt []float64 `json:"alert_at,omitempty"` // fractions of USD that call the alert callback
}

// Limits are requests and tokens per minute; 0 = none.
type Limits struct {
	RPM int64 `json:"rpm,omitempty"`
	TPM int64 `json:"tpm,omitempty"`
}

// KeySpec describes a gateway key to add: Key (the plaintext, hashed at once)
// or SHA256 (its hex digest), and the fields of a config key.
type KeySpec struct {
	Key     string   `json:"key,omitempty"`
	SHA256  string   `json:"sha256,omitempty"`
	Team    string   `json:"team,omitempty"`
	Models  []string `json:"models,omitempty"`  // nil: every alias
	Direct  *bool    `json:"direct,omitempty"`  // may name provider/model
	Expires string   `json:"expires,omitempty"` // "2027-01-01T00:00:00Z"
	Budgets []Budget `json:"budgets,omitempty"`
	Limits  *Limits  `json:"limits,omitempty"`
}

// KeyInfo is a key as Keys lists it: by id, never by hash.
type KeyInfo struct {
	ID      string   `json:"id"`
	Team    string   `json:"team"`
	State   string   `json:"state"` // "active", "revoked" or "expired"
	Direct  bool     `json:"direct"`
	Models  []string `json:"models"` // nil: every alias
	Expires string   `json:"expires,omitempty"`
}

// BudgetState is a budget's current period.
type BudgetState struct {
	Scope     string  `json:"scope"` // "global", "team" or "key"
	Name      string  `json:"name"`  // the team or key id; "" for global
	Period    string  `json:"period"`
	LimitUSD  float64 `json:"limit_usd"`
	SpentUSD  float64 `json:"spent_usd"`
	HeldUSD   float64 `json:"held_usd"` // reserved by calls in flight
	SpentNUSD int64   `json:"spent_nusd"`
	HeldNUSD  int64   `json:"held_nusd"`
}

// Alert is a budget threshold crossed, once per threshold per period.
type Alert struct {
	Scope       string  `json:"scope"`
	Name        string  `json:"name"`
	Period      string  `json:"period"`
	PeriodStart string  `json:"period_start"` // "" for a total budget
	Threshold   float64 `json:"threshold"`
	LimitUSD    float64 `json:"limit_usd"`
	SpentUSD    float64 `json:"spent_usd"`
	SpentNUSD   int64   `json:"spent_nusd"`
}

// AddKey adds a gateway key at run time. An error (StatusInvalidArgument)
// for a bad spec, a taken id, or a secret another key has.
func (g *Gateway) AddKey(id string, spec KeySpec) error {
	if hasNUL(id) {
		return argError("id contains a NUL byte")
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return argError("key spec: " + err.Error())
	}
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	st, msg := cKeyAdd(ptr, id, body)
	g.release()
	return keyError(st, msg)
}

// RotateKey gives key id a new secret: the old one stops working at once;
// budgets, limits and spend stay the key's.
func (g *Gateway) RotateKey(id, newKey string) error {
	if hasNUL(id) || hasNUL(newKey) {
		return argError("id or key contains a NUL byte")
	}
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	st, msg := cKeyRotate(ptr, id, newKey)
	g.release()
	return keyError(st, msg)
}

// RevokeKey revokes key id for good: its calls fail with StatusAuth.
func (g *Gateway) RevokeKey(id string) error {
	if hasNUL(id) {
		return argError("id contains a NUL byte")
	}
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	st := cKeyRevoke(ptr, id)
	g.release()
	return keyError(st, "no key with id "+quote(id))
}

func keyError(st Status, msg string) error {
	if st == StatusOK {
		return nil
	}
	return &Error{Code: st, Message: msg}
}

// Keys lists the gateway keys by id.
func (g *Gateway) Keys() ([]KeyInfo, error) {
	var out []KeyInfo
	return out, g.report(false, &out)
}

// Budgets reports every budget's current period.
func (g *Gateway) Budgets() ([]BudgetState, error) {
	var out []BudgetState
	return out, g.report(true, &out)
}

func (g *Gateway) report(budgets bool, v any) error {
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	raw, st := cJSONOut(ptr, budgets)
	g.release()
	if st != StatusOK {
		return &Error{Code: st, Message: "report: " + st.String()}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &Error{Code: StatusInternal, Body: raw, Message: "llmux-go: cannot decode: " + err.Error()}
	}
	return nil
}

// alertBox holds a gateway's alert callback; the C side holds its handle
// from the first OnAlert until Close, and the callback can be swapped
// atomically while alerts fire on other goroutines.
type alertBox struct {
	fn     atomic.Pointer[func(Alert)]
	handle cgo.Handle
}

func (b *alertBox) deliver(js string) {
	fn := b.fn.Load()
	if fn == nil || *fn == nil {
		return
	}
	var a Alert
	if json.Unmarshal([]byte(js), &a) == nil {
		(*fn)(a)
	}
}

func (b *alertBox) free() {
	if b != nil {
		b.handle.Delete()
	}
}

// OnAlert sets the function called once per budget threshold per period,
// on the goroutine whose call crossed it (it must be safe for concurrent
// use and return quickly). nil: no alerts.
func (g *Gateway) OnAlert(fn func(Alert)) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	first := g.alert == nil
	if first {
		g.alert = &alertBox{}
		g.alert.handle = cgo.NewHandle(g.alert)
	}
	g.alert.fn.Store(&fn)
	box := g.alert
	g.mu.Unlock()
	if !first {
		return nil
	}
	ptr, err := g.acquire()
	if err != nil {
		return err
	}
	st := cSetAlert(ptr, uintptr(box.handle))
	g.release()
	return keyError(st, "set alert callback")
}
