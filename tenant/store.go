// Package tenant hosts many tenants in one process (`dowasm serve`): each tenant has its own
// runtime (its own classes, ID namespaces, data directory and instance budget), bearer tokens
// stored as hashes, and classes it deploys over an HTTP API. A request carries a tenant's token
// and reaches only that tenant's runtime, so no name, ID or call can cross to another tenant.
package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver

	"github.com/dowasm/dowasm/internal/durablefs"
)

// Limits are a tenant's defaults and ceilings, or one class's limits (zero: the tenant's).
type Limits struct {
	MemoryPages    uint32 `json:"memory_pages,omitempty"`     // 64 KiB pages per instance
	TableElems     uint32 `json:"table_elems,omitempty"`      // elements per table
	EventTimeoutMs int64  `json:"event_timeout_ms,omitempty"` // run time per event, waits included
	EventCPUMs     int64  `json:"event_cpu_ms,omitempty"`     // CPU time per event
	StorageBytes   int64  `json:"storage_bytes,omitempty"`    // database size per object
	MaxQueue       int    `json:"max_queue,omitempty"`        // events waiting per object
	MaxBodySize    int64  `json:"max_body_size,omitempty"`    // request body
	MaxInstances   int    `json:"max_instances,omitempty"`    // live instances (tenant only)
	// What all of a tenant's objects use together (tenant only; see host.Config).
	MaxMemoryBytes  int64 `json:"max_memory_bytes,omitempty"`  // linear memory of the live instances
	MaxSockets      int   `json:"max_sockets,omitempty"`       // open WebSockets
	MaxObjects      int64 `json:"max_objects,omitempty"`       // objects with stored data
	MaxStorageBytes int64 `json:"max_storage_bytes,omitempty"` // bytes the objects store
}

// within returns class limits l bounded by the tenant's t: a class may ask for less than its
// tenant allows, never more; zero takes the tenant's value.
func (l Limits) within(t Limits) Limits {
	lo32 := func(c, t uint32) uint32 {
		if c == 0 || (t != 0 && c > t) {
			return t
		}
		return c
	}
	lo64 := func(c, t int64) int64 {
		if c == 0 || (t != 0 && c > t) {
			return t
		}
		return c
	}
	return Limits{
		MemoryPages:    lo32(l.MemoryPages, t.MemoryPages),
		TableElems:     lo32(l.TableElems, t.TableElems),
		EventTimeoutMs: lo64(l.EventTimeoutMs, t.EventTimeoutMs),
		EventCPUMs:     lo64(l.EventCPUMs, t.EventCPUMs),
		StorageBytes:   lo64(l.StorageBytes, t.StorageBytes),
		MaxQueue:       int(lo64(int64(l.MaxQueue), int64(t.MaxQueue))),
		MaxBodySize:    lo64(l.MaxBodySize, t.MaxBodySize),
	}
}

// DefaultLimits apply to a tenant created without limits of its own.
var DefaultLimits = Limits{
	MemoryPages:    1024, // 64 MiB
	TableElems:     100_000,
	EventTimeoutMs: 10_000,
	EventCPUMs:     5_000,
	StorageBytes:   128 << 20,
	MaxQueue:       256,
	MaxBodySize:    1 << 20,
	MaxInstances:   256,
	// 256 instances may each have 64 MiB, but not all at once
	MaxMemoryBytes:  2 << 30,
	MaxSockets:      10_000,
	MaxObjects:      1_000_000,
	MaxStorageBytes: 10 << 30,
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ValidName reports whether s can name a tenant (it becomes a directory name).
func ValidName(s string) bool { return nameRE.MatchString(s) }

// store keeps tenants, token hashes and deployed classes in <data>/tenants.sqlite and the
// modules as files under <data>/tenants/<tenant>/modules/.
type store struct {
	db   *sql.DB
	data string
}

const storeSchema = `
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, limits TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (hash BLOB PRIMARY KEY, tenant TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS classes (tenant TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL,
	limits TEXT NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (tenant, name));
`

func openStore(data string) (*store, error) {
	if err := durablefs.MkdirAll(data); err != nil {
		return nil, err
	}
	p := filepath.Join(data, "tenants.sqlite")
	// Created here so that it is private (SQLite would make it 0644; its WAL takes its mode).
	if f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, durablefs.FileMode); err == nil {
		f.Close()
		if err := durablefs.SyncDir(data); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open("sqlite3", "file:"+p+"?_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(storeSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w (is it a dowasm tenant database?)", p, err)
	}
	return &store{db: db, data: data}, nil
}

func (s *store) close() error { return s.db.Close() }

type tenantRow struct {
	name   string
	limits Limits
}

func (s *store) tenants() ([]tenantRow, error) {
	rows, err := s.db.Query(`SELECT name, limits FROM tenants ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tenantRow
	for rows.Next() {
		var t tenantRow
		var lj string
		if err := rows.Scan(&t.name, &lj); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(lj), &t.limits); err != nil {
			return nil, fmt.Errorf("tenant %s: stored limits: %w", t.name, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

var errExists = errors.New("already exists")

func (s *store) createTenant(name string, l Limits) error {
	lj, _ := json.Marshal(l)
	_, err := s.db.Exec(`INSERT INTO tenants (name, limits, created) VALUES (?, ?, ?)`, name, string(lj), time.Now().Unix())
	if err != nil && isConstraint(err) {
		return fmt.Errorf("tenant %q: %w", name, errExists)
	}
	return err
}

// deleteTenant deletes the tenant's records (tenant, tokens, classes) in one transaction.
func (s *store) deleteTenant(name string) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM tokens WHERE tenant = ?`, `DELETE FROM classes WHERE tenant = ?`, `DELETE FROM tenants WHERE name = ?`} {
		if _, err := tx.Exec(q, name); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// retireDir moves <data>/tenants/<name> to <data>/deleted/<name>-<unix ns> and returns the new
// path, or removes it when purge is set; nothing to do (and "") when it does not exist.
func (s *store) retireDir(name string, purge bool) (string, error) {
	dir := filepath.Join(s.data, "tenants", name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if purge {
		return "", os.RemoveAll(dir)
	}
	to := filepath.Join(s.data, "deleted", fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	if err := durablefs.MkdirAll(filepath.Dir(to)); err != nil {
		return "", err
	}
	if err := os.Rename(dir, to); err != nil {
		return "", err
	}
	// Both directories changed: a crash must not bring the tenant's directory back.
	if err := durablefs.SyncDir(filepath.Dir(dir)); err != nil {
		return "", err
	}
	return to, durablefs.SyncDir(filepath.Dir(to))
}

// tokenPrefix marks dowasm tenant tokens (so a leaked one is recognisable).
const tokenPrefix = "dwt_"

// newToken returns a fresh token (shown once) and stores only its SHA-256 hash: tokens are 256
// random bits, so a fast hash is enough (nothing to brute-force).
func (s *store) newToken(tenant string) (tok, id string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	tok = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(tok))
	if _, err := s.db.Exec(`INSERT INTO tokens (hash, tenant, created) VALUES (?, ?, ?)`, h[:], tenant, time.Now().Unix()); err != nil {
		return "", "", err
	}
	return tok, tokenID(h[:]), nil
}

// tokenID names a token in listings and revocations without revealing it: the first 8 bytes of
// its hash, in hex.
func tokenID(hash []byte) string { return hex.EncodeToString(hash[:8]) }

type tokenRow struct {
	ID      string `json:"id"`
	Created int64  `json:"created"` // Unix seconds
}

// tokens lists a tenant's tokens, oldest first.
func (s *store) tokens(tenant string) ([]tokenRow, error) {
	rows, err := s.db.Query(`SELECT hash, created FROM tokens WHERE tenant = ? ORDER BY created, hash`, tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []tokenRow{}
	for rows.Next() {
		var h []byte
		var r tokenRow
		if err := rows.Scan(&h, &r.Created); err != nil {
			return nil, err
		}
		r.ID = tokenID(h)
		out = append(out, r)
	}
	return out, rows.Err()
}

// revokeToken deletes the tenant's token with the given ID and returns its hash; found is false
// when the tenant has no such token.
func (s *store) revokeToken(tenant, id string) (hash [32]byte, found bool, err error) {
	prefix, err := hex.DecodeString(id)
	if err != nil || len(prefix) != 8 {
		return hash, false, nil
	}
	var h []byte
	err = s.db.QueryRow(`DELETE FROM tokens WHERE tenant = ? AND substr(hash, 1, 8) = ? RETURNING hash`, tenant, prefix).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return hash, false, nil
	}
	if err != nil {
		return hash, false, err
	}
	copy(hash[:], h)
	return hash, true, nil
}

func (s *store) tokenHashes() (map[[32]byte]string, error) {
	rows, err := s.db.Query(`SELECT hash, tenant FROM tokens`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[[32]byte]string{}
	for rows.Next() {
		var h []byte
		var t string
		if err := rows.Scan(&h, &t); err != nil {
			return nil, err
		}
		var k [32]byte
		copy(k[:], h)
		out[k] = t
	}
	return out, rows.Err()
}

type classRow struct {
	name, sha256 string
	limits       Limits
	updated      time.Time
}

func (s *store) classes(tenant string) ([]classRow, error) {
	rows, err := s.db.Query(`SELECT name, sha256, limits, updated FROM classes WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []classRow
	for rows.Next() {
		var c classRow
		var lj string
		var upd int64
		if err := rows.Scan(&c.name, &c.sha256, &lj, &upd); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(lj), &c.limits); err != nil {
			return nil, fmt.Errorf("class %s/%s: stored limits: %w", tenant, c.name, err)
		}
		c.updated = time.Unix(upd, 0)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *store) modulePath(tenant, class string) string {
	return filepath.Join(s.data, "tenants", tenant, "modules", class+".wasm")
}

// saveClass writes the module atomically (temporary file, fsync, rename) and records it.
func (s *store) saveClass(tenant, class string, wasm []byte, sum string, l Limits) error {
	p := s.modulePath(tenant, class)
	if err := durablefs.MkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), class+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(wasm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	// The rename is durable only with its directory: without this a crash after the record
	// below could leave a class whose module file is the old one, or missing.
	if err := durablefs.SyncDir(filepath.Dir(p)); err != nil {
		return err
	}
	lj, _ := json.Marshal(l)
	_, err = s.db.Exec(`INSERT INTO classes (tenant, name, sha256, limits, updated) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant, name) DO UPDATE SET sha256 = excluded.sha256, limits = excluded.limits, updated = excluded.updated`,
		tenant, class, sum, string(lj), time.Now().Unix())
	return err
}

func (s *store) deleteClass(tenant, class string) (bool, error) {
	res, err := s.db.Exec(`DELETE FROM classes WHERE tenant = ? AND name = ?`, tenant, class)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		os.Remove(s.modulePath(tenant, class))
	}
	return n > 0, nil
}

func isConstraint(err error) bool {
	return err != nil && regexp.MustCompile(`UNIQUE constraint failed|PRIMARY KEY`).MatchString(err.Error())
}
