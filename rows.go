package wtcache

import (
	"database/sql/driver"
	"io"
	"reflect"
	"slices"

	"github.com/wtcache/wtcache/internal/rowcodec"
)

// rows wraps inner rows, forwarding NextResultSet and the five ColumnType
// methods when the inner rows implement them and otherwise answering as
// database/sql does for a driver that lacks them.
type rows struct {
	inner   driver.Rows
	onClose func() // releases a write's intents once its rows are done
}

type rowsWrap = rows

var (
	_ driver.Rows                           = (*rows)(nil)
	_ driver.RowsNextResultSet              = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
)

func wrapRows(inner driver.Rows) driver.Rows { return &rows{inner: inner} }

func (r *rows) Columns() []string { return r.inner.Columns() }
func (r *rows) Close() error {
	err := r.inner.Close()
	if f := r.onClose; f != nil {
		r.onClose = nil
		f()
	}
	return err
}
func (r *rows) Next(dest []driver.Value) error { return r.inner.Next(dest) }

func (r *rows) HasNextResultSet() bool {
	if n, ok := r.inner.(driver.RowsNextResultSet); ok {
		return n.HasNextResultSet()
	}
	return false
}

func (r *rows) NextResultSet() error {
	if n, ok := r.inner.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return io.EOF
}

var anyType = reflect.TypeFor[any]()

func (r *rows) ColumnTypeScanType(index int) reflect.Type {
	if t, ok := r.inner.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(index)
	}
	return anyType
}

func (r *rows) ColumnTypeDatabaseTypeName(index int) string {
	if t, ok := r.inner.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(index)
	}
	return ""
}

func (r *rows) ColumnTypeLength(index int) (int64, bool) {
	if t, ok := r.inner.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(index)
	}
	return 0, false
}

func (r *rows) ColumnTypeNullable(index int) (nullable, ok bool) {
	if t, ok := r.inner.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(index)
	}
	return false, false
}

func (r *rows) ColumnTypePrecisionScale(index int) (precision, scale int64, ok bool) {
	if t, ok := r.inner.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(index)
	}
	return 0, 0, false
}

// cachedRows serves rows from cached images, with the column metadata the
// inner driver reported when the image was read from the database.
type cachedRows struct {
	names []string
	cols  []rowcodec.Column
	rows  [][]any
	pos   int

	// Room for the common case, one row, without more allocations.
	one [1][]any
	sel [1]*rowcodec.Row

	// home: the connection that made it, which takes it back at Close
	// for its next lookup (database/sql closes a connection's rows
	// before it uses the connection again, or closes them under the
	// connection's lock).
	home *conn
}

// newRows returns rows for a lookup's answer: the connection's spare
// ones, closed since they were last used, or new ones.
func (c *conn) newRows() *cachedRows {
	r := c.spareRows
	if r == nil {
		return &cachedRows{home: c}
	}
	c.spareRows = nil
	*r = cachedRows{home: c}
	return r
}

var (
	_ driver.Rows                           = (*cachedRows)(nil)
	_ driver.RowsNextResultSet              = (*cachedRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*cachedRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*cachedRows)(nil)
	_ driver.RowsColumnTypeLength           = (*cachedRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*cachedRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*cachedRows)(nil)
)

func (r *cachedRows) Columns() []string { return r.names }
func (r *cachedRows) Close() error {
	r.rows, r.pos = nil, 0
	if h := r.home; h != nil {
		r.home = nil
		h.spareRows = r
	}
	return nil
}

func (r *cachedRows) Next(dest []driver.Value) error {
	if r.pos >= len(r.rows) {
		return io.EOF
	}
	for i, v := range r.rows[r.pos] {
		if b, ok := v.([]byte); ok {
			// The row may be shared with other hits (decodeMemo): a
			// caller scanning into sql.RawBytes gets its own bytes.
			v = slices.Clone(b)
		}
		dest[i] = v
	}
	r.pos++
	return nil
}

func (r *cachedRows) HasNextResultSet() bool { return false }
func (r *cachedRows) NextResultSet() error   { return io.EOF }

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type   { return r.cols[i].ScanType }
func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string { return r.cols[i].DatabaseType }
func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	return r.cols[i].Length, r.cols[i].HasLength
}
func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	return r.cols[i].Nullable, r.cols[i].HasNullable
}
func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.cols[i].Precision, r.cols[i].Scale, r.cols[i].HasDecimal
}
