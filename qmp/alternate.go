package qmp

// StrOrNull is QAPI's alternate of str and null (migrate-set-parameters "tls-creds", …):
// a JSON string, or null meaning "reset to the default".
type StrOrNull struct {
	Null bool   // the member was null
	S    string // the string, when !Null
}

// DecodeValue implements ValueDecoder.
func (s *StrOrNull) DecodeValue(v *Value, path string) error {
	switch v.Kind() {
	case KindString:
		*s = StrOrNull{S: v.s}
	case KindNull:
		*s = StrOrNull{Null: true}
	default:
		return typeErr(path, "StrOrNull")
	}
	return nil
}

// EncodeValue implements ValueEncoder.
func (s StrOrNull) EncodeValue() *Value {
	if s.Null {
		return Null()
	}
	return String(s.S)
}

// QAPISchema implements SchemaProvider: {"meta-type": "alternate", "members": [str, null]}.
func (StrOrNull) QAPISchema(ref func(any) string) *Value {
	return alternateNode(ref, "", QNull{})
}

// alternateNode builds an alternate's schema node from zero values of its member types.
func alternateNode(ref func(any) string, members ...any) *Value {
	arr := Array()
	for _, m := range members {
		o := Object()
		o.Set("type", String(ref(m)))
		arr.Append(o)
	}
	n := Object()
	n.Set("members", arr)
	n.Set("meta-type", String("alternate"))
	return n
}
