// Code generated from QEMU 7.2's QKeyCode (query-qmp-schema) and its qcode→number map; DO NOT EDIT.

package input

// QKeyCodes are QAPI's QKeyCode values, in schema order: a qcode is an index here.
var QKeyCodes = []string{
	"unmapped", "shift", "shift_r", "alt", "alt_r", "ctrl", "ctrl_r", "menu", "esc", "1", "2", "3",
	"4", "5", "6", "7", "8", "9", "0", "minus", "equal", "backspace", "tab", "q", "w", "e", "r", "t",
	"y", "u", "i", "o", "p", "bracket_left", "bracket_right", "ret", "a", "s", "d", "f", "g", "h",
	"j", "k", "l", "semicolon", "apostrophe", "grave_accent", "backslash", "z", "x", "c", "v", "b",
	"n", "m", "comma", "dot", "slash", "asterisk", "spc", "caps_lock", "f1", "f2", "f3", "f4", "f5",
	"f6", "f7", "f8", "f9", "f10", "num_lock", "scroll_lock", "kp_divide", "kp_multiply",
	"kp_subtract", "kp_add", "kp_enter", "kp_decimal", "sysrq", "kp_0", "kp_1", "kp_2", "kp_3",
	"kp_4", "kp_5", "kp_6", "kp_7", "kp_8", "kp_9", "less", "f11", "f12", "print", "home", "pgup",
	"pgdn", "end", "left", "up", "down", "right", "insert", "delete", "stop", "again", "props",
	"undo", "front", "copy", "open", "paste", "find", "cut", "lf", "help", "meta_l", "meta_r",
	"compose", "pause", "ro", "hiragana", "henkan", "yen", "muhenkan", "katakanahiragana", "kp_comma",
	"kp_equals", "power", "sleep", "wake", "audionext", "audioprev", "audiostop", "audioplay",
	"audiomute", "volumeup", "volumedown", "mediaselect", "mail", "calculator", "computer", "ac_home",
	"ac_back", "ac_forward", "ac_refresh", "ac_bookmarks", "lang1", "lang2",
}

// qcodeToNum is QEMU's qcode → "number" (XT scancode set 1; 0x80 marks an 0xe0-prefixed key).
var qcodeToNum = [...]uint8{
	1:   0x2a, // shift
	2:   0x36, // shift_r
	3:   0x38, // alt
	4:   0xb8, // alt_r
	5:   0x1d, // ctrl
	6:   0x9d, // ctrl_r
	7:   0xdd, // menu
	8:   0x01, // esc
	9:   0x02, // 1
	10:  0x03, // 2
	11:  0x04, // 3
	12:  0x05, // 4
	13:  0x06, // 5
	14:  0x07, // 6
	15:  0x08, // 7
	16:  0x09, // 8
	17:  0x0a, // 9
	18:  0x0b, // 0
	19:  0x0c, // minus
	20:  0x0d, // equal
	21:  0x0e, // backspace
	22:  0x0f, // tab
	23:  0x10, // q
	24:  0x11, // w
	25:  0x12, // e
	26:  0x13, // r
	27:  0x14, // t
	28:  0x15, // y
	29:  0x16, // u
	30:  0x17, // i
	31:  0x18, // o
	32:  0x19, // p
	33:  0x1a, // bracket_left
	34:  0x1b, // bracket_right
	35:  0x1c, // ret
	36:  0x1e, // a
	37:  0x1f, // s
	38:  0x20, // d
	39:  0x21, // f
	40:  0x22, // g
	41:  0x23, // h
	42:  0x24, // j
	43:  0x25, // k
	44:  0x26, // l
	45:  0x27, // semicolon
	46:  0x28, // apostrophe
	47:  0x29, // grave_accent
	48:  0x2b, // backslash
	49:  0x2c, // z
	50:  0x2d, // x
	51:  0x2e, // c
	52:  0x2f, // v
	53:  0x30, // b
	54:  0x31, // n
	55:  0x32, // m
	56:  0x33, // comma
	57:  0x34, // dot
	58:  0x35, // slash
	59:  0x37, // asterisk
	60:  0x39, // spc
	61:  0x3a, // caps_lock
	62:  0x3b, // f1
	63:  0x3c, // f2
	64:  0x3d, // f3
	65:  0x3e, // f4
	66:  0x3f, // f5
	67:  0x40, // f6
	68:  0x41, // f7
	69:  0x42, // f8
	70:  0x43, // f9
	71:  0x44, // f10
	72:  0x45, // num_lock
	73:  0x46, // scroll_lock
	74:  0xb5, // kp_divide
	75:  0x37, // kp_multiply
	76:  0x4a, // kp_subtract
	77:  0x4e, // kp_add
	78:  0x9c, // kp_enter
	79:  0x53, // kp_decimal
	80:  0x54, // sysrq
	81:  0x52, // kp_0
	82:  0x4f, // kp_1
	83:  0x50, // kp_2
	84:  0x51, // kp_3
	85:  0x4b, // kp_4
	86:  0x4c, // kp_5
	87:  0x4d, // kp_6
	88:  0x47, // kp_7
	89:  0x48, // kp_8
	90:  0x49, // kp_9
	91:  0x56, // less
	92:  0x57, // f11
	93:  0x58, // f12
	94:  0xb7, // print
	95:  0xc7, // home
	96:  0xc9, // pgup
	97:  0xd1, // pgdn
	98:  0xcf, // end
	99:  0xcb, // left
	100: 0xc8, // up
	101: 0xd0, // down
	102: 0xcd, // right
	103: 0xd2, // insert
	104: 0xd3, // delete
	105: 0xe8, // stop
	113: 0xe5, // find
	117: 0xdb, // meta_l
	118: 0xdc, // meta_r
	120: 0xc6, // pause
	121: 0x73, // ro
	122: 0x70, // hiragana
	123: 0x79, // henkan
	124: 0x7d, // yen
	125: 0x7b, // muhenkan
	127: 0x7e, // kp_comma
	128: 0x59, // kp_equals
	129: 0xde, // power
	130: 0xdf, // sleep
	131: 0xe3, // wake
	132: 0x99, // audionext
	133: 0x90, // audioprev
	134: 0xa4, // audiostop
	135: 0xa2, // audioplay
	136: 0xa0, // audiomute
	137: 0xb0, // volumeup
	138: 0xae, // volumedown
	139: 0xed, // mediaselect
	140: 0xec, // mail
	141: 0xa1, // calculator
	142: 0xeb, // computer
	143: 0xb2, // ac_home
	144: 0xea, // ac_back
	145: 0xe9, // ac_forward
	146: 0xe7, // ac_refresh
	147: 0xe6, // ac_bookmarks
}
