package admin

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// ListAuditEntries returns one page of the audit log (GET /v1/admin/audit).
// authorize has checked the admin role; reading the audit log is itself an
// operator action and lands in the access log with the operator's id.
func (h *Handlers) ListAuditEntries(c echo.Context, params gen.ListAuditEntriesParams) error {
	if h.deps.Audit == nil {
		return edge.NotConfigured("audit log")
	}
	f := commands.AuditFilter{Limit: 100}
	if params.Action != nil {
		f.Action = *params.Action
	}
	if params.Actor != nil {
		f.Actor = *params.Actor
	}
	if params.Subject != nil {
		f.Subject = *params.Subject
	}
	if params.From != nil {
		f.From = *params.From
	}
	if params.To != nil {
		f.To = *params.To
	}
	if params.After != nil {
		f.After = *params.After
	}
	if params.Limit != nil {
		f.Limit = *params.Limit
	}
	ctx := c.Request().Context()
	list, err := h.deps.Audit.List(ctx, f)
	if err != nil {
		return err
	}
	// The entries hold other users' ids and IP addresses: the read is
	// audited before anything is shown, and refused if it cannot be.
	admin, err := edge.Caller(c)
	if err != nil {
		return err
	}
	read := commands.AuditEntry{Action: commands.AuditPIIRead, Actor: admin, Subject: f.Subject, IP: c.RealIP(),
		Detail: map[string]string{"route": "GET /v1/admin/audit", "entries": strconv.Itoa(len(list))}}
	if f.Action != "" {
		read.Detail["action"] = f.Action
	}
	if err := h.deps.Audit.Record(ctx, read); err != nil {
		return fmt.Errorf("the read could not be audited, so it is refused: %w", domain.ErrUnavailable)
	}
	out := gen.AuditList{Entries: make([]gen.AuditEntry, 0, len(list))}
	for _, r := range list {
		e := gen.AuditEntry{Seq: r.Seq, At: r.At, Action: r.Action, Ip: r.IP, Detail: r.Detail,
			PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash)}
		if r.Actor != uuid.Nil {
			a := r.Actor
			e.Actor = &a
		}
		if r.Subject != uuid.Nil {
			sub := r.Subject
			e.Subject = &sub
		}
		if e.Detail == nil {
			e.Detail = map[string]string{}
		}
		out.Entries = append(out.Entries, e)
	}
	if len(list) == f.Limit {
		next := list[len(list)-1].Seq
		out.NextAfter = &next
	}
	return c.JSON(http.StatusOK, out)
}
