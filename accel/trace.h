#include "trace/trace-accel.h"
