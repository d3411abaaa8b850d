package p4src

// Typed names and ids of P4Info objects.  The generated constants in
// names_gen.go use these types so that, say, an action name cannot be passed
// where a table name is expected.
type (
	TableName         string
	TableID           uint32
	MatchFieldName    string
	MatchFieldID      uint32
	ActionName        string
	ActionID          uint32
	ParamName         string
	ParamID           uint32
	ActionProfileName string
	ActionProfileID   uint32
	CounterName       string
	CounterID         uint32
	DirectCounterName string
	DirectCounterID   uint32
	DigestName        string
	DigestID          uint32
)
