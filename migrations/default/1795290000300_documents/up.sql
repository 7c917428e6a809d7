-- Collaborative documents. Every change of title or content bumps documents.version in the
-- database, so the documents_history event handler can key history rows on (document_id, version)
-- taken from the event's "new" row, and on the Hasura event id.

CREATE TABLE public.documents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
  title text NOT NULL,
  content text NOT NULL DEFAULT '',
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT documents_version_positive CHECK (version > 0)
);
CREATE INDEX documents_owner_id_idx ON public.documents (owner_id);

CREATE FUNCTION public.documents_bump_version()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NEW.title IS DISTINCT FROM OLD.title OR NEW.content IS DISTINCT FROM OLD.content THEN
    NEW.version := OLD.version + 1;
  ELSE
    NEW.version := OLD.version;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER documents_bump_version
BEFORE UPDATE ON public.documents
FOR EACH ROW EXECUTE FUNCTION public.documents_bump_version();

CREATE TRIGGER set_public_documents_updated_at
BEFORE UPDATE ON public.documents
FOR EACH ROW EXECUTE FUNCTION public.set_current_timestamp_updated_at();

CREATE TABLE public.document_collaborators (
  document_id uuid NOT NULL REFERENCES public.documents (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
  role text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT document_collaborators_pkey PRIMARY KEY (document_id, user_id),
  CONSTRAINT document_collaborators_role_check CHECK (role IN ('owner', 'editor', 'viewer'))
);
CREATE INDEX document_collaborators_user_id_idx ON public.document_collaborators (user_id);

CREATE TABLE public.document_history (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  document_id uuid NOT NULL REFERENCES public.documents (id) ON DELETE CASCADE,
  version integer NOT NULL,
  author_id uuid REFERENCES public.users (id) ON DELETE SET NULL,
  diff text NOT NULL,
  content_after text NOT NULL,
  event_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT document_history_event_id_key UNIQUE (event_id),
  CONSTRAINT document_history_document_version_key UNIQUE (document_id, version),
  CONSTRAINT document_history_version_positive CHECK (version > 0)
);
CREATE INDEX document_history_author_id_idx ON public.document_history (author_id);
