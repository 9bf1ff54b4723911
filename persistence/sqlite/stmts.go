package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// stmtDef names a prepared statement and where to keep it.
type stmtDef struct {
	dst **sql.Stmt
	sql string
}

// stmts owns a set of prepared statements, on the read pool or on the
// writer's connection, and closes them together.
type stmts struct {
	all []*sql.Stmt
}

// prepare prepares every def on p (a *sql.DB or a *sql.Conn); on failure it
// closes what it prepared.
func (s *stmts) prepare(ctx context.Context, p interface {
	PrepareContext(context.Context, string) (*sql.Stmt, error)
}, defs []stmtDef) error {
	for _, d := range defs {
		st, err := p.PrepareContext(ctx, d.sql)
		if err != nil {
			return errors.Join(fmt.Errorf("prepare %q: %w", d.sql, err), s.close())
		}
		*d.dst = st
		s.all = append(s.all, st)
	}
	return nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
