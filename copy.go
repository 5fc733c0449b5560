package idmap

import (
	"reflect"
	"unsafe"
)

// Copy returns a new object with obj's values, which the caller owns: it is
// in no map, and changing it changes nothing that Get, Bind or Cached
// return, until the change is written to the database and committed. That
// is how to change a row loaded in the shared map, whose objects other
// goroutines may be reading:
//
//	u, err := idmap.Get[User](ctx, db, 42) // shared: read it, never write it
//	c := idmap.Copy(u)
//	c.Name = "bea"
//	_, err = db.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", c.Name, c.ID)
//	// the UPDATE expires key 42: the next Get loads a new object named "bea"
//
// Column fields that hold memory (slices such as []byte and sql.RawBytes,
// maps, and pointers such as a *string for a column that may be NULL) get
// a copy of it one level deep, so that the copy shares no column value with obj. Other
// fields, temporary ones (db:"-") included, are copied as an assignment
// copies them. Copy of nil is nil. T need not be mapped.
//
// Copy only reads obj. Reading an object of the shared map is safe (idmap
// never writes to an object it has handed out there); its temporary fields
// are safe to read only if no goroutine writes them at the same time.
func Copy[T any](obj *T) *T {
	if obj == nil {
		return nil
	}
	c := new(T)
	*c = *obj
	m := modelOf(typeFor[T]())
	if m.scalar {
		switch v := reflect.ValueOf(c).Elem(); v.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
			copyMemory(v)
		}
		return c
	}
	for i := range m.fields {
		f := &m.fields[i]
		switch f.typ.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
			copyMemory(f.at(unsafe.Pointer(c)))
		}
	}
	return c
}

// copyMemory replaces the slice, map or pointer in v (settable) with a copy
// of what it refers to, one level deep (through pointers, down to their
// first non-pointer value, whose own slice or map is copied too).
func copyMemory(v reflect.Value) {
	if v.IsNil() {
		return
	}
	switch v.Kind() {
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(s, v)
		v.Set(s)
	case reflect.Map:
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), it.Value())
		}
		v.Set(c)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(v.Elem())
		switch p.Elem().Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer:
			copyMemory(p.Elem())
		}
		v.Set(p)
	}
}
