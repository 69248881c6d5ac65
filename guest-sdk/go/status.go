package dowasm

import "strconv"

// Status is a status code of the dowasm ABI v1 (abi/ABI.md). Host functions return -Status on
// failure. A host test checks this table against the host's (abi/abi.go).
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
}

func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "STATUS_" + strconv.Itoa(int(s))
}

// Error is a failed host call: the operation and the ABI status.
type Error struct {
	Op     string
	Status Status
}

func (e *Error) Error() string { return "dowasm: " + e.Op + ": " + e.Status.String() }

// Is makes errors.Is(err, dowasm.ErrKeyTooLarge) work for any operation.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Status == e.Status
}

// Sentinel errors to compare with errors.Is.
var (
	ErrKeyTooLarge     = &Error{Status: StatusKeyTooLarge}
	ErrValueTooLarge   = &Error{Status: StatusValueTooLarge}
	ErrTooManyKeys     = &Error{Status: StatusTooManyKeys}
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrStorageFailure  = &Error{Status: StatusStorageFailure}
	ErrNoTransaction   = &Error{Status: StatusNoTransaction}
	ErrTooDeep         = &Error{Status: StatusTooDeep}
	ErrResultTooLarge  = &Error{Status: StatusResultTooLarge}
	ErrEventCancelled  = &Error{Status: StatusEventCancelled}
)

// check turns a raw result into (value, error).
func check(op string, rc int32) (int32, error) {
	if rc < 0 {
		return 0, &Error{Op: op, Status: Status(-rc)}
	}
	return rc, nil
}
