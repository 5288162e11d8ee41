"""Sensors: ``inbox_sensor`` requests a run per new or changed inbox file;
``run_recovery_sensor`` fails orphaned launches and removes what killed runs left behind."""
