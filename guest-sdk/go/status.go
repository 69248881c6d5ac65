package dowasm

import "strconv"

// Status is a status code of the dowasm guest ABI v1 (abi/ABI.md, "Status codes"). Host functions
// return a non-negative value on success and -Status on failure; the SDK turns failures into
// *Error values. A host test (host/guests_test.go) checks this table against abi/abi.go, so keep
// one constant per line in the form `StatusName Status = N`.
type Status int32

const (
	StatusOK              Status = 0
	StatusNotFound        Status = 1
	StatusBadPointer      Status = 2
	StatusKeyTooLarge     Status = 3
	StatusValueTooLarge   Status = 4
	StatusTooManyKeys     Status = 5
	StatusInvalidArgument Status = 6
	StatusStorageFailure  Status = 7
	StatusNoTransaction   Status = 8
	StatusTooDeep         Status = 9
	StatusResultTooLarge  Status = 10
	StatusNotAllowed      Status = 11
	StatusEventCancelled  Status = 12
	StatusCallCycle       Status = 13
	StatusCallFailed      Status = 14
	StatusOverloaded      Status = 15
	StatusLimitExceeded   Status = 16
)

var statusNames = [...]string{
	StatusOK:              "OK",
	StatusNotFound:        "NOT_FOUND",
	StatusBadPointer:      "BAD_POINTER",
	StatusKeyTooLarge:     "KEY_TOO_LARGE",
	StatusValueTooLarge:   "VALUE_TOO_LARGE",
	StatusTooManyKeys:     "TOO_MANY_KEYS",
	StatusInvalidArgument: "INVALID_ARGUMENT",
	StatusStorageFailure:  "STORAGE_FAILURE",
	StatusNoTransaction:   "NO_TRANSACTION",
	StatusTooDeep:         "TOO_DEEP",
	StatusResultTooLarge:  "RESULT_TOO_LARGE",
	StatusNotAllowed:      "NOT_ALLOWED",
	StatusEventCancelled:  "EVENT_CANCELLED",
	StatusCallCycle:       "CALL_CYCLE",
	StatusCallFailed:      "CALL_FAILED",
	StatusOverloaded:      "OVERLOADED",
	StatusLimitExceeded:   "LIMIT_EXCEEDED",
}

// String returns the ABI name of the status ("KEY_TOO_LARGE"), or STATUS_<n> for a value this SDK
// does not know.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "STATUS_" + strconv.Itoa(int(s))
}

// Error is a failed host call: the operation that failed and the ABI status the host returned.
// Compare with the sentinels below: errors.Is(err, dowasm.ErrKeyTooLarge) is true for an *Error
// of any operation with that status.
type Error struct {
	Op     string // "storage_put", "txn_begin", ...; empty in the sentinels
	Status Status
	// Msg says what was wrong when the SDK refused a call itself, before calling the host
	// ("alarm time -5 ms is negative"). For ErrCallFailed and ErrCallCycle it is the message the
	// host staged with the status: the called object's error, or the chain of waiting objects.
	// Empty when the status is all there is to say.
	Msg string
}

// Error formats the error as "dowasm: <op>: <msg> (<STATUS>)" when there is a message (the SDK
// refused the call itself, or a call between objects failed with the host's message), and
// "dowasm: <op>: <STATUS>" otherwise. (The Rust SDK formats its errors the same way.)
func (e *Error) Error() string {
	switch {
	case e.Op == "":
		return "dowasm: " + e.Status.String()
	case e.Msg != "":
		return "dowasm: " + e.Op + ": " + e.Msg + " (" + e.Status.String() + ")"
	}
	return "dowasm: " + e.Op + ": " + e.Status.String()
}

// Is reports whether target is the sentinel (an *Error without Op) of e's status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Status == e.Status
}

// Sentinel errors, one per failure status, to compare with errors.Is.
var (
	ErrNotFound        = &Error{Status: StatusNotFound}
	ErrBadPointer      = &Error{Status: StatusBadPointer}
	ErrKeyTooLarge     = &Error{Status: StatusKeyTooLarge}
	ErrValueTooLarge   = &Error{Status: StatusValueTooLarge}
	ErrTooManyKeys     = &Error{Status: StatusTooManyKeys}
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrStorageFailure  = &Error{Status: StatusStorageFailure}
	ErrNoTransaction   = &Error{Status: StatusNoTransaction}
	ErrTooDeep         = &Error{Status: StatusTooDeep}
	ErrResultTooLarge  = &Error{Status: StatusResultTooLarge}
	ErrNotAllowed      = &Error{Status: StatusNotAllowed}
	ErrEventCancelled  = &Error{Status: StatusEventCancelled}
	ErrCallCycle       = &Error{Status: StatusCallCycle}
	ErrCallFailed      = &Error{Status: StatusCallFailed}
	ErrOverloaded      = &Error{Status: StatusOverloaded}
	ErrLimitExceeded   = &Error{Status: StatusLimitExceeded}
)

// check turns a host function's raw result into (value, error).
func check(op string, rc int32) (int32, error) {
	if rc < 0 {
		return 0, &Error{Op: op, Status: Status(-rc)}
	}
	return rc, nil
}
