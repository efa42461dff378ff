package qmp

// The QAPI types of query-qmp-schema's own return value (qapi/introspect.json), so that the
// schema describes itself as QEMU's does. The handler returns the generated *Value; these
// types only feed the schema.

// SchemaMetaType is the tag of SchemaInfo.
type SchemaMetaType string

// EnumValues implements Enum.
func (SchemaMetaType) EnumValues() []string {
	return []string{"builtin", "enum", "array", "object", "alternate", "command", "event"}
}

// JSONType is SchemaInfoBuiltin's json-type.
type JSONType string

// EnumValues implements Enum.
func (JSONType) EnumValues() []string {
	return []string{"string", "number", "int", "boolean", "null", "object", "array", "value"}
}

// SchemaInfo is one entity of query-qmp-schema.
type SchemaInfo struct {
	QAPIOrder
	Name     string         `json:"name"`
	MetaType SchemaMetaType `json:"meta-type"`
	Features []string       `json:"features,omitempty"`
	Variant  any            `json:"-" qapi:"variant"`
}

// UnionTag implements Union.
func (SchemaInfo) UnionTag() string { return "meta-type" }

// UnionVariants implements Union.
func (SchemaInfo) UnionVariants() map[string]any {
	return map[string]any{
		"builtin":   SchemaInfoBuiltin{},
		"enum":      SchemaInfoEnum{},
		"array":     SchemaInfoArray{},
		"object":    SchemaInfoObject{},
		"alternate": SchemaInfoAlternate{},
		"command":   SchemaInfoCommand{},
		"event":     SchemaInfoEvent{},
	}
}

// SchemaInfoBuiltin describes a builtin type.
type SchemaInfoBuiltin struct {
	JSONType JSONType `json:"json-type"`
}

// SchemaInfoEnumMember is one enum value.
type SchemaInfoEnumMember struct {
	Name     string   `json:"name"`
	Features []string `json:"features,omitempty"`
}

// SchemaInfoEnum describes an enum.
type SchemaInfoEnum struct {
	Members []SchemaInfoEnumMember `json:"members"`
	Values  []string               `json:"values" qapi:"deprecated"`
}

// SchemaInfoArray describes an array type.
type SchemaInfoArray struct {
	ElementType string `json:"element-type"`
}

// SchemaInfoObjectMember is one member of an object type.
type SchemaInfoObjectMember struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Default  *Value   `json:"default,omitempty"`
	Features []string `json:"features,omitempty"`
}

// SchemaInfoObjectVariant is one variant of a union.
type SchemaInfoObjectVariant struct {
	Case string `json:"case"`
	Type string `json:"type"`
}

// SchemaInfoObject describes an object type.
type SchemaInfoObject struct {
	Members  []SchemaInfoObjectMember  `json:"members"`
	Tag      string                    `json:"tag,omitempty"`
	Variants []SchemaInfoObjectVariant `json:"variants,omitempty"`
}

// SchemaInfoAlternateMember is one branch of an alternate.
type SchemaInfoAlternateMember struct {
	Type string `json:"type"`
}

// SchemaInfoAlternate describes an alternate.
type SchemaInfoAlternate struct {
	Members []SchemaInfoAlternateMember `json:"members"`
}

// SchemaInfoCommand describes a command.
type SchemaInfoCommand struct {
	ArgType  string `json:"arg-type"`
	RetType  string `json:"ret-type"`
	AllowOOB bool   `json:"allow-oob,omitempty"`
}

// SchemaInfoEvent describes an event.
type SchemaInfoEvent struct {
	ArgType string `json:"arg-type"`
}
