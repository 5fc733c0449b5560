package idmap

import (
	"database/sql"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unsafe"

	"github.com/go-idmap/idmap/cache"
)

// Model maps T, a struct type, with the given options. Call it at init, before
// T is loaded. It panics, with a message that starts with "idmap:", when T is
// not a struct or has no primary key.
func Model[T any](opts ...ModelOption) {
	t := reflect.TypeFor[T]()
	var cfg modelConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	m := buildModel(t, &cfg)
	if m.err != nil {
		panic(m.err.Error())
	}
	configs.Store(t, &cfg)
	models.Store(t, m)
	modelFast[typeSlot(t)].Store(m)
	byPtr(m.ptrWord).Store(m)
	replaceFirstCaseModel(m)
	tableIndex.gen.Add(1)
}

var (
	configs sync.Map // reflect.Type → *modelConfig, from Model
	models  sync.Map // reflect.Type → *model, built once per type
)

// tableNamer is what a type implements, on its value or its pointer, to be
// mapped.
type tableNamer interface{ TableName() string }

var (
	tableNamerType = reflect.TypeFor[tableNamer]()
	scannerType    = reflect.TypeFor[sql.Scanner]()
	timeType       = reflect.TypeFor[time.Time]()
	bytesType      = reflect.TypeFor[[]byte]()
)

// field is one column of a model. ptrType is the type word of *typ
// (ifaceType), with which fieldPtr and convScanner make the field's address
// an interface value without reflect.
type field struct {
	name   string       // Go field path, for messages: "Base.ID"
	column string       // column name
	offset uintptr      // from the start of the struct
	typ    reflect.Type // the field's type
	// keyTyp is the type of the field's values as map keys: typ, but for a
	// named type of kind int64, int or string with no driver.Valuer (type
	// UserID int64), whose keys are kept as the basic type (keyTypeOf).
	keyTyp  reflect.Type
	ptrType unsafe.Pointer
	pk      bool

	conv        conv           // how Bind stores a value into the field itself (convert.go)
	elemConv    conv           // for convPtr: how into what the field points to
	elemPtrType unsafe.Pointer // for convPtr: the descriptor of a pointer to what the field points to
}

// model is what idmap knows of a Go type. It is built once per type and read
// without a lock. mapped: the type has a TableName method or was registered
// with Model; strong: registered with StrongRefs, the shared maps hold its
// objects strongly.
type model struct {
	typ    reflect.Type
	name   string // "pkg.Type", for messages
	mapped bool
	table  string // as given (Table, TableName), for messages and signals
	// tableName is table's dot-separated parts, unquoted: what the SQL
	// that idmap builds names, each part quoted for the dialect.
	tableName []string
	strong    bool
	scalar    bool // not a struct: scanned from a single column as it is

	fields []field
	temps  []field        // exported fields tagged db:"-": temporary attributes
	byCol  map[string]int // column → index in fields
	byFold map[string]int // lower-case column → index in fields, for drivers that change case
	pk     []int          // indexes in fields of the key's columns, in order
	// typedKey says whether the key is one int64 or int field (keyInt)
	// or one string field (keyString), which Get looks up typed; a field
	// of a named type counts by its keys' type (field.keyTyp).
	typedKey uint8
	// keyWord is, for such a field of a named type, the type word of an
	// interface that holds one of its values: Get reads a key passed as
	// that type (UserID(5)) by value too. Nil otherwise.
	keyWord unsafe.Pointer
	// intHit says that Get's first case may look an int64 or int key up
	// as it is: the key is one int64 field, or one int field where an int
	// has 64 bits.
	intHit bool
	err    error // why the type cannot be used as a mapped type

	ctype *cache.Type // the maps' descriptor of this type: &ctypeOf
	// ctypeOf is the descriptor itself, held in the model so that Get's
	// first case and getHit reach the type's first shared map with one
	// load less.
	ctypeOf cache.Type
	// ptrWord is the type word of interfaces holding a *typ: the key of
	// modelByPtr.
	ptrWord unsafe.Pointer
	// link is the last *sql.DB a Get of this type went through, and its
	// database (databaseOf without its two calls). It keeps that *sql.DB
	// reachable until another replaces it or it closes (database.unlink):
	// one per type.
	link unsafe.Pointer // *dbLink; atomic

	lastPlan atomic.Pointer[plan] // the plan of the last result bound, reused for the same columns

	// getSQL makes getTxt and getHead once per dialect (dialect.go): they are
	// read only after getSQL[d].Do.
	getSQL  [numDialects]sync.Once
	getTxt  [numDialects]string
	getHead [numDialects]int // length of getTxt's "SELECT … FROM table"
}

// modelOf returns the model of t, building it on first use.
func modelOf(t reflect.Type) *model {
	slot := &modelFast[typeSlot(t)]
	if m := slot.Load(); m != nil && m.typ == t {
		return m
	}
	if m, ok := models.Load(t); ok {
		slot.Store(m.(*model))
		return m.(*model)
	}
	var cfg *modelConfig
	if c, ok := configs.Load(t); ok {
		cfg = c.(*modelConfig)
	}
	m, loaded := models.LoadOrStore(t, buildModel(t, cfg))
	if !loaded && m.(*model).mapped {
		tableIndex.gen.Add(1)
	}
	slot.Store(m.(*model))
	return m.(*model)
}

// modelFast is a direct-mapped cache in front of models: a hit loads one
// pointer and compares the type, with no hashing.
var modelFast [256]atomic.Pointer[model]

// mappedModelOf is mappedModel of T, found by the type word of *T in a
// direct-mapped cache of the usable mapped models: a hit is two loads and
// a comparison of words, with no reflect.Type (Get's hit path).
func mappedModelOf[T any](op string) (*model, error) {
	w := ptrWordOf[T]()
	if m := modelAt(w); m != nil {
		return m, nil
	}
	return mappedModelOfSlow[T](w, op)
}

// modelAt returns the usable mapped model whose pointers have type word w
// if the cache holds it, else nil.
func modelAt(w unsafe.Pointer) *model {
	if m := byPtr(w).Load(); m != nil && m.ptrWord == w {
		return m
	}
	return nil
}

// mappedModelOfSlow is mappedModelOf past its cache: T's model, kept in the
// cache when usable.
func mappedModelOfSlow[T any](w unsafe.Pointer, op string) (*model, error) {
	m, err := mappedModel(typeFor[T](), op)
	if err == nil {
		byPtr(w).Store(m)
	}
	return m, err
}

// ptrWordOf returns the type word of interfaces holding a *T.
func ptrWordOf[T any]() unsafe.Pointer {
	var p any = (*T)(nil)
	return (*eface)(unsafe.Pointer(&p)).typ
}

// modelByPtr holds usable mapped models by the type word of their
// pointers (mappedModelOf); Model replaces a type's entry.
var modelByPtr [256]atomic.Pointer[model]

func byPtr(w unsafe.Pointer) *atomic.Pointer[model] {
	return &modelByPtr[int(uintptr(w)>>5)&(len(modelByPtr)-1)]
}

// mappedModel returns the model of t, or an error if t cannot be used where
// a mapped type is needed.
func mappedModel(t reflect.Type, op string) (*model, error) {
	m := modelOf(t)
	if !m.mapped {
		return nil, errorf(ErrNotMapped, "%s: %s has no TableName method and was not registered with idmap.Model", op, m.name)
	}
	if m.err != nil {
		return nil, m.err
	}
	return m, nil
}

// typeName names t in messages and default database names; nil is "<nil>".
func typeName(t reflect.Type) string {
	if t == nil {
		return "<nil>"
	}
	return t.String()
}

// buildModel builds the model of t with the configuration given to Model,
// if any. It does not fail: what makes a mapped type unusable is kept in
// m.err, returned where the type is used (Model panics with it).
func buildModel(t reflect.Type, cfg *modelConfig) *model {
	m := &model{typ: t, name: typeName(t), ptrWord: ifaceType(reflect.PointerTo(t))}
	if cfg != nil {
		m.mapped = true
		m.table = cfg.table
		m.strong = cfg.strong
	}
	if t.Kind() == reflect.Struct && (t.Implements(tableNamerType) || reflect.PointerTo(t).Implements(tableNamerType)) {
		m.mapped = true
		if m.table == "" {
			name, err := callTableName(t)
			if err != nil {
				m.err = err
				return m
			}
			m.table = name
		}
	}
	if t.Kind() != reflect.Struct || t == timeType || reflect.PointerTo(t).Implements(scannerType) {
		m.scalar = true
		if m.mapped {
			m.err = errorf(ErrModel, "%s is not a struct and cannot be mapped", m.name)
		}
		return m
	}
	m.byCol = make(map[string]int)
	m.byFold = make(map[string]int)
	depth := make(map[string]int)
	if err := m.walk(t, 0, "", 0, depth, map[reflect.Type]bool{}); err != nil {
		m.err = err
		return m
	}
	for i, f := range m.fields {
		if f.pk {
			m.pk = append(m.pk, i)
		}
	}
	if len(m.pk) == 0 {
		if i, ok := m.byCol["id"]; ok {
			m.fields[i].pk = true
			m.pk = []int{i}
		}
	}
	if len(m.pk) == 1 {
		f := &m.fields[m.pk[0]]
		m.typedKey = typedKeyOf(f.keyTyp)
		if m.typedKey != keyOther && f.keyTyp != f.typ {
			m.keyWord = ifaceType(f.typ)
		}
		m.intHit = m.typedKey == keyInt || m.typedKey == keyIntInt && strconv.IntSize == 64
	}
	if m.mapped {
		switch {
		case len(m.pk) == 0:
			m.err = errorf(ErrNoPrimaryKey, "%s has no primary key: tag a field `db:\"col,pk\"` or name a column \"id\"", m.name)
		case m.table == "":
			m.err = errorf(ErrNoTable, "%s has no table: give it a TableName method or register it with idmap.Table", m.name)
		default:
			parts, why := parseName(m.table, maxNameParts)
			if why != "" {
				m.err = errorf(ErrModel, "%s: table name %q: %s", m.name, m.table, why)
				break
			}
			m.tableName = parts
		}
		m.ctypeOf = cache.Type{
			Name:   m.name,
			Table:  baseTable(m.table),
			Strong: m.strong,
			Norm:   normKey,
			// normKey returns an int64 as it is, and a string in
			// cache.NormString's form.
			NormKeepsInt64: true,
			NormStrings:    true,
			New:            func() any { obj, _ := m.newObj(); return obj },
			Copy:           func(dst, src any) { m.copyTemps(objPtr(dst), objPtr(src)) },
		}
		m.ctype = &m.ctypeOf
	}
	return m
}

// callTableName calls the TableName method of t, declared on its value or
// on its pointer, on a zero value.
func callTableName(t reflect.Type) (name string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errorf(ErrModel, "%s.TableName panicked: %v", typeName(t), r)
		}
	}()
	if t.Implements(tableNamerType) {
		return reflect.Zero(t).Interface().(tableNamer).TableName(), nil
	}
	return reflect.New(t).Interface().(tableNamer).TableName(), nil
}

// walk adds the columns of struct type t, found at offset in the outer
// struct, flattening embedded structs.
func (m *model) walk(t reflect.Type, offset uintptr, prefix string, level int, depth map[string]int, seen map[reflect.Type]bool) error {
	if seen[t] {
		return errorf(ErrModel, "%s embeds %s recursively", m.name, t)
	}
	seen[t] = true
	defer delete(seen, t)
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("db")
		col, opts, _ := strings.Cut(tag, ",")
		if col == "-" {
			if sf.IsExported() {
				m.temps = append(m.temps, field{name: prefix + sf.Name, offset: offset + sf.Offset, typ: sf.Type})
			}
			continue
		}
		ft := sf.Type
		if sf.Anonymous && (!hasTag || col == "") {
			st := ft
			if st.Kind() == reflect.Pointer {
				st = st.Elem()
			}
			if st.Kind() == reflect.Struct && st != timeType && !reflect.PointerTo(st).Implements(scannerType) {
				if ft.Kind() == reflect.Pointer {
					return errorf(ErrModel, "%s: embedded pointer %s is not supported; embed the struct by value", m.name, ft)
				}
				if err := m.walk(st, offset+sf.Offset, prefix+sf.Name+".", level+1, depth, seen); err != nil {
					return err
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if !hasTag && !scannable(ft) {
			// Not something database/sql scans into (a slice, a map, a
			// struct that is not a Scanner, a pointer to one): not a
			// column unless a db tag says so.
			continue
		}
		if col == "" {
			col = snakeCase(sf.Name)
		} else if c, err := m.columnOf(prefix+sf.Name, col); err == nil {
			col = c
		} else if m.mapped {
			return err
		} // else: no SQL is built for the type; the tag is the column as written

		f := field{
			name:   prefix + sf.Name,
			column: col,
			offset: offset + sf.Offset,
			typ:    ft,
			keyTyp: keyTypeOf(ft),
			pk:     hasOpt(opts, "pk"),
		}
		f.ptrType = ifaceType(reflect.PointerTo(ft))
		f.setConv()
		if j, dup := m.byCol[col]; dup {
			switch {
			case depth[col] < level:
				continue // a shallower field shadows this one, as in Go
			case depth[col] == level:
				return errorf(ErrModel, "%s: fields %s and %s both map to column %q", m.name, m.fields[j].name, f.name, col)
			}
			m.fields[j] = f
			depth[col] = level
			continue
		}
		depth[col] = level
		m.byCol[col] = len(m.fields)
		if _, ok := m.byFold[strings.ToLower(col)]; !ok {
			m.byFold[strings.ToLower(col)] = len(m.fields)
		}
		m.fields = append(m.fields, f)
	}
	return nil
}

// columnOf reads the column name of a db tag (the part before any
// option): one bare or quoted identifier (ident.go), returned unquoted.
func (m *model) columnOf(field, tag string) (string, error) {
	parts, why := parseName(tag, 1)
	if why != "" {
		return "", errorf(ErrModel, "%s.%s: column name %q: %s", m.name, field, tag, why)
	}
	return parts[0], nil
}

// hasOpt reports whether the comma-separated options of a db tag include
// want.
func hasOpt(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if strings.TrimSpace(o) == want {
			return true
		}
	}
	return false
}

// scannable reports whether database/sql's Scan can store into a *t.
func scannable(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(scannerType) || t == timeType || t == bytesType {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String, reflect.Interface:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8
	case reflect.Pointer:
		return scannable(t.Elem())
	}
	return false
}

// snakeCase turns a Go field name into a column name: "UserID" → "user_id",
// "HTTPServer" → "http_server", "CreatedAt" → "created_at".
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				(i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// baseTable returns the table part of a possibly schema-qualified name,
// unquoted, as the statement reader reports the tables a statement writes:
// writes to "public.users" and "users" expire the same entries (when in
// doubt, widen). A name that parseName refuses (no SQL is built from it)
// loses its quote characters.
func baseTable(name string) string {
	if parts, why := parseName(name, maxNameParts); why == "" {
		return parts[len(parts)-1]
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return strings.Trim(name, "\"`[]")
}

// typeFor is reflect.TypeFor.
func typeFor[T any]() reflect.Type { return reflect.TypeFor[T]() }
