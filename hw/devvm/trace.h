#include "trace/trace-hw_devvm.h"
