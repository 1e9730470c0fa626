#pragma once
// <qcustomplot.h> under QT_NO_KEYWORDS: the studio builds without Qt's `signals`/`slots`/`emit`
// macros because core's JobSpec has a field called `slots`; QCustomPlot's header still says
// `signals:` and `foreach`, so it gets the macros for its own declarations only.
#define signals Q_SIGNALS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef signals
#undef emit
#undef foreach
