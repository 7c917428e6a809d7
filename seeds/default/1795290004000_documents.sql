-- "Launch plan" is shared: alice owns it, bob edits it, carol can only read it; dave has no access.
-- "Bob's notes" is private to bob. Each document has its initial history row (version 1).
INSERT INTO public.documents (id, owner_id, title, content, version, created_at, updated_at) VALUES
  ('dddddddd-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'Launch plan',
   E'Goals\n- Ship the edge gateway\n- Enable API keys\n', 1, '2026-03-01T08:00:00Z', '2026-03-01T08:00:00Z'),
  ('dddddddd-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222', 'Bob''s notes',
   E'Remember to rotate the demo API key.\n', 1, '2026-03-02T08:00:00Z', '2026-03-02T08:00:00Z')
ON CONFLICT DO NOTHING;

INSERT INTO public.document_collaborators (document_id, user_id, role, created_at) VALUES
  ('dddddddd-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'owner', '2026-03-01T08:00:00Z'),
  ('dddddddd-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', 'editor', '2026-03-01T08:00:00Z'),
  ('dddddddd-0000-4000-8000-000000000001', '33333333-3333-4333-8333-333333333333', 'viewer', '2026-03-01T08:00:00Z'),
  ('dddddddd-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222', 'owner', '2026-03-02T08:00:00Z')
ON CONFLICT DO NOTHING;

INSERT INTO public.document_history (id, document_id, version, author_id, diff, content_after, event_id, created_at) VALUES
  ('dddddddd-1111-4000-8000-000000000001', 'dddddddd-0000-4000-8000-000000000001', 1, '11111111-1111-4111-8111-111111111111',
   E'--- a/content\n+++ b/content\n@@ -0,0 +1,3 @@\n+Goals\n+- Ship the edge gateway\n+- Enable API keys\n',
   E'Goals\n- Ship the edge gateway\n- Enable API keys\n', 'seed:dddddddd-0000-4000-8000-000000000001:1', '2026-03-01T08:00:00Z'),
  ('dddddddd-1111-4000-8000-000000000002', 'dddddddd-0000-4000-8000-000000000002', 1, '22222222-2222-4222-8222-222222222222',
   E'--- a/content\n+++ b/content\n@@ -0,0 +1 @@\n+Remember to rotate the demo API key.\n',
   E'Remember to rotate the demo API key.\n', 'seed:dddddddd-0000-4000-8000-000000000002:1', '2026-03-02T08:00:00Z')
ON CONFLICT DO NOTHING;
