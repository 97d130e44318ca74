package breakglass

/*
#include "breakglass_cgo.h"
*/
import "C"

import "strconv"

// ConfigKey describes one configuration key as the loaded library's table has it
// (bg_config_key): the keys Configure, Unset and ConfigureFromEnv take.
type ConfigKey struct {
	// Name is the key Configure takes; BREAKGLASS_ + its upper case in the environment.
	Name string
	// Kind is "integer", "boolean", "string", "secret" (never logged) or "email_list"
	// (comma-separated addresses).
	Kind string
	// Default is the default as Configure would take it; meaningful when HasDefault is set
	// (keys without a default are unset by default).
	Default    string
	HasDefault bool
	// Min and Max bound an "integer" key's value; both are 0 for other kinds.
	Min, Max uint64
	// Doc is one line of English describing the key.
	Doc string
}

// ConfigKeys returns the library's configuration key table, in the order ConfigureFromEnv
// applies the keys. The strings are copied; the table is the same for the life of the
// process.
func ConfigKeys() ([]ConfigKey, error) {
	n := int(C.bg_config_key_count())
	keys := make([]ConfigKey, 0, n)
	for i := 0; i < n; i++ {
		var info C.struct_bg_config_key_info
		op := "ConfigKeys[" + strconv.Itoa(i) + "]"
		if err := call(op, func() C.bg_status { return C.bg_config_key(C.size_t(i), &info) }); err != nil {
			return nil, err
		}
		k := ConfigKey{
			Name: C.GoString(info.name),
			Kind: C.GoString(info.kind),
			Min:  uint64(info.min),
			Max:  uint64(info.max),
			Doc:  C.GoString(info.doc),
		}
		if info.default_value != nil {
			k.Default, k.HasDefault = C.GoString(info.default_value), true
		}
		keys = append(keys, k)
	}
	return keys, nil
}
