// The GUI tests' main: a QApplication on the offscreen platform (also at test discovery, where
// CTest's ENVIRONMENT does not apply), QStandardPaths in test mode so no user settings leak in.
#include <QApplication>
#include <QStandardPaths>
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  qputenv("MOE_STUDIO_NO_PROMPTS", "1");
  if (qEnvironmentVariableIsEmpty("MOE_RUNTIME")) qputenv("MOE_RUNTIME", MOE_RUNTIME_PATH);  // this build's runtime
  QStandardPaths::setTestModeEnabled(true);
  QApplication app(argc, argv);
  QApplication::setOrganizationName("moe-studio-tests");
  QApplication::setApplicationName("gui_tests");
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
