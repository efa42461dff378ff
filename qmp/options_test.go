package qmp_test

import "tlcvm/qmp"

func optionsNone() qmp.Options { return qmp.Options{} }
