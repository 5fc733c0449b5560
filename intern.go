package idmap

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// Intern puts objects that were scanned or decoded elsewhere (sqlx, scany,
// JSON) into the map of ctx's scope (or q's transaction, or the shared
// map): each element is replaced by its canonical object, and objects whose
// key is not in the map become canonical. Intern trusts the objects to be
// current as of the call. q is a *sql.DB, *sql.Tx or *sql.Conn of an idmap
// database (for the last two, see Cached). Nothing is changed if an element
// is nil or has a bad key.
func Intern[T any](ctx context.Context, q Querier, objs []*T) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := mappedModelOf[T]("Intern")
	if err != nil {
		return err
	}
	if q == nil || isNilPointer(q) {
		return errorf(ErrNotIdmap, "Intern[%s]: nil Querier", m.name)
	}
	d, cm, err := resolve(ctx, "Intern", q, m)
	if err != nil {
		return err
	}
	keys := make([]any, len(objs))
	for i, o := range objs {
		if o == nil {
			return errorf(ErrBadDestination, "Intern[%s]: element %d is nil", m.name, i)
		}
		if keys[i], err = m.objKey("Intern", unsafe.Pointer(o)); err != nil {
			// Again, for a message that names the element (no
			// formatting on the path without errors).
			_, err = m.objKey(fmt.Sprintf("Intern[%s]: element %d", m.name, i), unsafe.Pointer(o))
			return err
		}
	}
	epoch := d.cdb.Now()
	all := &plan{fields: make([]*field, len(m.fields))}
	for i := range m.fields {
		all.fields[i] = &m.fields[i]
	}
	for i, o := range objs {
		objs[i] = as[T](cm.Put(m.ctype, &cache.Load{Key: keys[i], Obj: o, Epoch: epoch}, all.apply))
	}
	return nil
}
