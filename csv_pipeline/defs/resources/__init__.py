"""Resources: ``PlayFiles`` (inbox, outbox and scratch locations, task sizes) and the IO
manager that keeps the step outputs passed between steps."""
